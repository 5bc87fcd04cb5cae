/* samlgw's only script, inlined at the end of every page: shows the copy buttons
 * (button[data-copy=ID], hidden without JavaScript) and copies the value of element ID. */
(function () {
  "use strict";
  var buttons = document.querySelectorAll("button[data-copy]");
  Array.prototype.forEach.call(buttons, function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    var status = document.getElementById(button.getAttribute("data-status"));
    if (!field) {
      return;
    }
    function say(attr) {
      if (status) {
        status.textContent = button.getAttribute(attr) || "";
      }
    }
    function fallback() {
      field.focus();
      field.select();
      var ok = false;
      try {
        ok = document.execCommand("copy");
      } catch (e) {
        ok = false;
      }
      say(ok ? "data-done" : "data-failed");
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(function () {
          say("data-done");
        }, fallback);
      } else {
        fallback();
      }
    });
  });
})();
