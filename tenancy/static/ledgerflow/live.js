// Live refresh of long work (packaging, project runs, disclosure generation).
//
// While the page shows something still in progress (an element with `data-pending`), it is
// fetched again every few seconds and each element marked `data-live` (it needs an id) is
// replaced by its fresh copy; it stops once nothing is pending. Forms stay outside those
// regions, so nothing the user is typing is lost. Used by the registry, projects and
// compliance pages.
(function () {
  "use strict";
  const FIRST_DELAY = 1500;
  const MAX_DELAY = 10000;
  let delay = FIRST_DELAY;

  function pending(root) {
    return root.querySelector("[data-pending]") !== null;
  }

  function swap(fresh) {
    document.querySelectorAll("[data-live][id]").forEach(function (old) {
      const replacement = fresh.getElementById(old.id);
      if (replacement) {
        old.replaceWith(document.importNode(replacement, true));
      }
    });
  }

  async function refresh() {
    try {
      const response = await fetch(window.location.href, {
        credentials: "same-origin",
        headers: { "X-Requested-With": "live-refresh" },
      });
      if (response.ok) {
        swap(new DOMParser().parseFromString(await response.text(), "text/html"));
        delay = FIRST_DELAY;
      } else {
        delay = Math.min(delay * 2, MAX_DELAY);  // a server in trouble is asked less often
      }
    } catch (error) {
      delay = Math.min(delay * 2, MAX_DELAY);  // offline for a moment: try again later
    }
    schedule();
  }

  function schedule() {
    if (pending(document)) {
      window.setTimeout(refresh, delay);
    }
  }

  schedule();
})();
