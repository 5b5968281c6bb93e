// Starts Swagger UI on /docs (pigeon.api.docs): its top bar selects one of the documents the
// page lists in data-urls, "All" first. A file, not an inline script, so that the page's
// Content-Security-Policy can allow scripts from Pigeon alone.
//
// The theme is the console's (localStorage "pigeon-theme", else the system's), shown with
// Swagger UI's own dark styles (html.dark-mode); its top bar's switch is remembered the same way.
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  var urls = JSON.parse(root.getAttribute("data-urls"));

  function chosenTheme() {
    try {
      var chosen = localStorage.getItem("pigeon-theme");
      if (chosen === "light" || chosen === "dark") return chosen;
    } catch (e) { /* storage off */ }
    return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  function applyTheme() {
    document.documentElement.classList.toggle("dark-mode", chosenTheme() === "dark");
  }

  applyTheme();
  window.ui = SwaggerUIBundle({
    urls: urls,
    "urls.primaryName": urls[0].name,
    dom_id: "#swagger-ui",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null, // no badge from validator.swagger.io
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
    onComplete: applyTheme, // the top bar follows the system's scheme when it mounts: the chosen one wins
  });
  document.addEventListener("click", function (event) { // captured: React redraws the button before bubbling
    if (!event.target.closest || !event.target.closest(".dark-mode-toggle")) return;
    setTimeout(function () { // after Swagger UI's own toggle
      var dark = document.documentElement.classList.contains("dark-mode");
      try { localStorage.setItem("pigeon-theme", dark ? "dark" : "light"); } catch (e) { /* storage off */ }
    }, 0);
  }, true);
})();
