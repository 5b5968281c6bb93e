// Starts Swagger UI on /docs (pigeon.api.docs): its top bar selects one of the documents the
// page lists in data-urls, "All" first. A file, not an inline script, so that the page's
// Content-Security-Policy can allow scripts from Pigeon alone.
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  var urls = JSON.parse(root.getAttribute("data-urls"));
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
  });
})();
