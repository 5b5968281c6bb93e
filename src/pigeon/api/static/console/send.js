// The Send screen: the CSV upload's progress bar (hidden until an upload starts; without
// script the form posts plainly, with no bar), and a file over the size limit refused before
// it is uploaded. The rest is htmx attributes.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("csv-form");
  if (!form) { return; }
  var upload = document.getElementById("csv-upload");
  var bar = document.getElementById("csv-progress");
  var file = document.getElementById("csv-file");
  var help = form.querySelector(".file-help");
  var most = parseInt(form.getAttribute("data-max-bytes"), 10);

  function show(value) {
    bar.value = value;
    bar.textContent = Math.round(value) + "%";
  }

  file.addEventListener("change", function () {
    var chosen = file.files && file.files[0];
    var why = "";
    if (chosen && most && chosen.size > most) {
      why = "This file is " + (chosen.size / 1048576).toFixed(1) + " MB: at most " +
        Math.floor(most / 1048576) + " MB can be sent at once. Split it into smaller files.";
    }
    file.setCustomValidity(why);
    help.textContent = why;
    help.classList.toggle("error", why !== "");
    if (!form.classList.contains("htmx-request")) {  // a new file: nothing uploading yet
      show(0);
      upload.hidden = true;
    }
  });

  form.addEventListener("htmx:beforeSend", function () {
    show(0);
    upload.hidden = false;
  });
  // htmx fires it for the upload and then for the answer's download: the bar only moves forward
  form.addEventListener("htmx:xhr:progress", function (event) {
    var detail = event.detail;
    if (detail.lengthComputable && detail.total > 0) {
      show(Math.max(bar.value, 100 * detail.loaded / detail.total));
    }
  });
  form.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.successful) { show(100); }
  });
});
