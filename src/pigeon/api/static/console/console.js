// The console's little script: the theme switch and the phone-width menu. Everything else is htmx attributes.
document.addEventListener("DOMContentLoaded", function () {
  var menu = document.querySelector("header nav button.menu");
  if (menu) {
    var toggle = function (open) { menu.setAttribute("aria-expanded", open ? "true" : "false"); };
    menu.addEventListener("click", function () { toggle(menu.getAttribute("aria-expanded") !== "true"); });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && menu.getAttribute("aria-expanded") === "true") {
        toggle(false);
        menu.focus();
      }
    });
  }
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
