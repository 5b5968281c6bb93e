// The console's little script: the theme switch. Everything else is htmx attributes.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button.theme").forEach(function (button) {
    button.addEventListener("click", function () {
      var root = document.documentElement;
      var current = root.getAttribute("data-theme") ||
        (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
      var next = current === "dark" ? "light" : "dark";
      root.setAttribute("data-theme", next);
      try { localStorage.setItem("pigeon-theme", next); } catch (e) { /* storage off */ }
    });
  });
});
