/* The course site's own script, served as _static/course.js on every page (course/sphinx_offline.py).

   1. Interactive figures (course/interactive.py writes their HTML): draws each <figure class="course-interactive">
      with plotly.js from the JSON it carries, and wires its native control (<select>, radio buttons or
      <input type="range">) to the plotly call of plotly's own control, which stays in the figure, hidden.
      The title, the sentence that describes the plot (read out by screen readers) and the slider's value
      follow the control.
   2. Wide figures on a narrow screen scroll sideways in their box (course.css): such a box gets a name
      and tabindex="0", so that a keyboard can scroll it too. */
(function () {
  "use strict";

  function drawFigure(figure) {
    var plot = figure.querySelector(".course-plotly");
    var spec = JSON.parse(figure.querySelector("script.course-figure-spec").textContent);
    if (!window.Plotly) {
      plot.textContent = "This interactive figure needs plotly.js, which the site serves as _static/"
        + figure.getAttribute("data-plotly-path") + "; it did not load.";
      console.error("course.interactive: plotly.js did not load, figure " + plot.id + " is not drawn");
      return;
    }
    Plotly.newPlot(plot, spec.data, spec.layout, spec.config).then(function () {
      if (spec.frames && spec.frames.length) { return Plotly.addFrames(plot, spec.frames); }
    }).then(function () {
      wire(figure, plot, spec.states || [], spec.layout);
      plot.setAttribute("data-drawn", "true");
    });
  }

  // The plotly call of state k: the one plotly's own (hidden) slider step or menu button would make.
  function plotlyCall(layout, k) {
    var control = (layout.sliders || [])[0] || (layout.updatemenus || [])[0] || {};
    return (control.steps || control.buttons || [])[k] || {method: "skip", args: []};
  }

  function show(figure, plot, state, call, k) {
    var done = function () { plot.setAttribute("data-state", String(k)); };
    var method = call.method || "restyle";
    if (method === "skip") { done(); return; }  // plotly's own no-op method: nothing changes
    var title = figure.querySelector(".course-figure-title");
    if (state.title) {
      title.querySelector(".course-figure-main").textContent = state.title[0] || "";
      title.querySelector(".course-figure-note").textContent = state.title.slice(1).join(" ");
    }
    if (state.text) { figure.querySelector(".course-figure-text").textContent = state.text; }
    var range = figure.querySelector("input[type=range]");
    if (range) {
      range.setAttribute("aria-valuetext", state.label);
      figure.querySelector("output").textContent = state.label;
    }
    plot.setAttribute("data-state", "moving");
    Promise.resolve(Plotly[method].apply(null, [plot].concat(call.args || []))).then(done);
  }

  function wire(figure, plot, states, layout) {
    if (!states.length) { return; }
    var controls = figure.querySelectorAll("[data-course-control]");
    var current = null;
    controls.forEach(function (control) {
      var kind = control.getAttribute("data-course-control");
      var pick = function () {
        if (kind === "radio" && !control.checked) { return; }
        var k = parseInt(control.value, 10);
        if (k === current || !states[k]) { return; }
        current = k;
        show(figure, plot, states[k], plotlyCall(layout, k), k);
      };
      control.addEventListener("input", pick);
      control.addEventListener("change", pick);
      if (kind !== "radio" || control.checked) { current = parseInt(control.value, 10); }
    });
    plot.setAttribute("data-state", String(current));
  }

  function markScrollingFigures() {
    document.querySelectorAll("div.cell_output, div.course-plot-box").forEach(function (box) {
      var img = box.querySelector(":scope > img");
      var plot = box.querySelector(":scope > .course-plotly");
      if (!img && !plot) { return; }
      if (box.scrollWidth > box.clientWidth + 1) {
        var what = img ? (img.getAttribute("alt") || "")
          : (box.closest("figure").querySelector(".course-figure-main") || {}).textContent || "";
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", "figure, scrolls sideways: " + what);
      } else if (box.hasAttribute("tabindex")) {
        ["tabindex", "role", "aria-label"].forEach(function (a) { box.removeAttribute(a); });
      }
    });
  }

  // Deferred scripts run in page order and plotly.min.js comes after this one: draw once all have run.
  var started = false;
  function start() {
    if (started) { return; }
    started = true;
    document.querySelectorAll("figure.course-interactive").forEach(drawFigure);
  }
  document.addEventListener("DOMContentLoaded", start);
  window.addEventListener("load", start);
  if (document.readyState === "complete") { start(); }
  window.addEventListener("load", markScrollingFigures);
  window.addEventListener("resize", markScrollingFigures);
})();
