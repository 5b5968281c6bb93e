// Before the page paints: the theme the visitor chose last (else the system's).
(function () {
  var chosen = null;
  try { chosen = localStorage.getItem("pigeon-theme"); } catch (e) { /* storage off */ }
  if (chosen === "light" || chosen === "dark") document.documentElement.setAttribute("data-theme", chosen);
})();
