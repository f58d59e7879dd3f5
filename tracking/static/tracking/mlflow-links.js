// The links the mlflow client prints ("View run at http://host/#/experiments/1/runs/<id>")
// point into MLflow's single-page app, whose routes live in the URL fragment. Browsers never
// send a fragment to the server, so the server answers them all with the home page: this file,
// loaded by every page, reads the fragment there and goes to the matching Ledgerflow page.
//
// Logged out, "/" redirects to the login page and the browser keeps the fragment across the
// redirect (it is not part of `next`), so the login form adds it to `next`; the page after the
// login (home, or the organization chooser first) then does the mapping.
//
// ROUTES is the whole mapping, in order, first match wins (tests/web/test_links.py checks
// each row in a real browser). Experiment ids are MLflow's ("0" is Default), run ids are run
// uuids: the ones Ledgerflow's own URLs take.
(function () {
  "use strict";

  const ID = "([^/]+)";
  const REST = "(?:/.*)?";
  const q = encodeURIComponent;

  // [MLflow route (the fragment's path, "?query" removed), Ledgerflow page (its path below
  // the site's root, from the decoded groups and the fragment's query)]
  const ROUTES = [
    // a run's artifact: MLflow 2's ".../artifactPath/<path>", MLflow 3's ".../artifacts/<path>"
    [new RegExp(`^/experiments/${ID}/runs/${ID}/(?:artifactPath|artifacts)/(.+)$`),
      (m) => `runs/${q(m[2])}/?path=${q(m[3])}#artifacts`],
    // a run, with or without one of its tabs (overview, model-metrics, artifacts, traces, ...)
    [new RegExp(`^/experiments/${ID}/runs/${ID}${REST}$`), (m) => `runs/${q(m[2])}/`],
    [new RegExp(`^/runs/${ID}${REST}$`), (m) => `runs/${q(m[1])}/`],
    // a logged model (MLflow 3): its block on its run's page (the server finds the run)
    [new RegExp(`^/experiments/${ID}/models/${ID}${REST}$`), (m) => `logged-models/${q(m[2])}/`],
    // an experiment, with or without a tab (runs, models, traces, ...) or a saved search
    [new RegExp(`^/experiments/${ID}${REST}$`), (m) => `experiments/${q(m[1])}/`],
    [/^\/experiments\/?$/, () => "experiments/"],
    [/^\/compare-experiments(?:\/.*)?$/, () => "experiments/"],
    [/^\/compare-runs\/?$/, (m, query) => runsPage(runIds(query))],
    [/^\/metric(?:\/.*)?$/, (m, query) => runsPage(runIds(query))],
    // the registry
    [new RegExp(`^/models/${ID}/versions/${ID}${REST}$`),
      (m) => `models/${q(m[1])}/versions/${q(m[2])}/`],
    [new RegExp(`^/models/${ID}${REST}$`), (m) => `models/${q(m[1])}/`],
    [/^\/models\/?$/, () => "models/"],
  ];

  // MLflow writes run lists as JSON arrays (`runs=["a","b"]`); accept "a,b" too.
  function runIds(query) {
    const raw = query.get("runs") || "";
    try {
      const parsed = JSON.parse(raw);
      if (Array.isArray(parsed)) {
        return parsed.map(String).filter(Boolean);
      }
    } catch (error) {
      // not JSON: a comma-separated list
    }
    return raw.split(",").map((id) => id.trim()).filter(Boolean);
  }

  function runsPage(ids) {
    if (ids.length === 0) {
      return "experiments/";
    }
    return ids.length === 1 ? `runs/${q(ids[0])}/` : `compare/?runs=${ids.map(q).join(",")}`;
  }

  function decoded(part) {
    try {
      return decodeURIComponent(part);
    } catch (error) {
      return part;  // a stray "%": take it as it is
    }
  }

  // "#/experiments/1/runs/ab?workspace=x" -> "experiments/1/runs/ab"'s page; null when the
  // fragment is no MLflow route (or one Ledgerflow has no page for).
  function target(hash) {
    const fragment = (hash || "").replace(/^#/, "");
    if (!fragment.startsWith("/")) {
      return null;  // an ordinary anchor ("#artifacts"), not an MLflow route
    }
    const cut = fragment.indexOf("?");
    const path = cut < 0 ? fragment : fragment.slice(0, cut);
    const query = new URLSearchParams(cut < 0 ? "" : fragment.slice(cut + 1));
    for (const [pattern, page] of ROUTES) {
      const match = path.match(pattern);
      if (match) {
        return page(match.map((part, index) => (index ? decoded(part || "") : part)), query);
      }
    }
    return null;
  }

  function notice(hash) {
    const main = document.querySelector("main");
    if (!main) {
      return;
    }
    const note = document.createElement("ul");
    note.className = "messages";
    note.setAttribute("role", "status");
    const item = note.appendChild(document.createElement("li"));
    item.textContent = `This link points to MLflow's page "${hash}", which Ledgerflow does ` +
      "not have. Experiments, runs and models are in the menu above.";
    main.prepend(note);
  }

  const script = document.currentScript;
  const root = (script && script.dataset.home) || "/";
  window.ledgerflowMlflowTarget = target;  // for the tests of the mapping

  function onHome() {
    const hash = window.location.hash;
    if (!hash.startsWith("#/") || hash === "#/") {
      return;
    }
    const page = target(hash);
    if (page === null) {
      notice(decoded(hash));
    } else {
      window.location.replace(root + page);  // Back skips the home page
    }
  }

  // The login form's answer redirects to `next`: it keeps the fragment (any fragment: an
  // MLflow route or an anchor of the page asked for). (The organization
  // chooser's forms have no action, so they post to this URL, fragment included, and the
  // browser carries the fragment over their redirect by itself.)
  function keepFragment() {
    const hash = window.location.hash;
    if (hash.length < 2) {
      return;
    }
    document.querySelectorAll("form input[type=hidden][name=next]").forEach((next) => {
      if (!next.value.includes("#")) {
        next.value = (next.value || root) + hash;
      }
    });
  }

  function start() {
    if (window.location.pathname === root) {
      onHome();
      // a link pasted into a tab that shows the home page only changes the fragment
      window.addEventListener("hashchange", onHome);
    } else {
      keepFragment();
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
