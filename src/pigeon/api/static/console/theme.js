// Before the page paints: the theme the visitor chose last (else the system's), and that script runs.
(function () {
  document.documentElement.classList.add("js");  // the Menu button works: the links may fold behind it
  var chosen = null;
  try { chosen = localStorage.getItem("pigeon-theme"); } catch (e) { /* storage off */ }
  if (chosen === "light" || chosen === "dark") document.documentElement.setAttribute("data-theme", chosen);
})();
