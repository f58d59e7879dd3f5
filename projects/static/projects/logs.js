// Live tail of a project run's output. Each <pre data-log-url> follows one stream through the
// native API (`GET /api/v1/projects/runs/<uuid>/logs?stream=...&offset=N`, which takes the
// browser session): the text from the last offset is appended until the API says `done`.
(function () {
  "use strict";
  const IDLE_DELAY = 1500;  // nothing new: ask again after this
  const state = document.querySelector("[data-log-state]");
  const streams = Array.from(document.querySelectorAll("pre[data-log-url]"));
  let open = streams.length;

  function atBottom(pre) {
    return pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
  }

  function finished() {
    open -= 1;
    if (open === 0 && state) {
      state.textContent = "The run has ended; this is all of its output.";
    }
  }

  function follow(pre) {
    const code = pre.querySelector("code") || pre;
    let offset = 0;

    async function poll() {
      let body;
      try {
        const response = await fetch(pre.dataset.logUrl + "&offset=" + offset,
                                     { credentials: "same-origin" });
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        body = await response.json();
      } catch (error) {
        if (state) {
          state.textContent = "Could not read the output (" + error.message + "); retrying…";
        }
        window.setTimeout(poll, IDLE_DELAY * 2);
        return;
      }
      if (body.text) {
        const stick = atBottom(pre);  // keep following only a reader who is at the end
        code.append(document.createTextNode(body.text));
        if (stick) {
          pre.scrollTop = pre.scrollHeight;
        }
      }
      const grew = body.offset > offset;
      offset = body.offset;
      if (body.done) {
        if (!code.textContent) {
          code.textContent = "(no output)";
        }
        finished();
        return;
      }
      if (state && open > 0) {
        state.textContent = "Following the output as the run goes on…";
      }
      window.setTimeout(poll, grew ? 0 : IDLE_DELAY);
    }

    poll();
  }

  streams.forEach(follow);
})();
