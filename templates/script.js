/* samlgw's only script, inlined at the end of every page: shows the copy buttons
 * (button[data-copy=ID], hidden without JavaScript) and copies the value of element ID;
 * filters the IdP chooser's list while one types in its search field
 * (input[data-filter=LIST]: the items of LIST whose data-search holds the text stay);
 * submits form[data-autosubmit] (a SAML logout message on its way to the IdP). */
(function () {
  "use strict";
  var searches = document.querySelectorAll("input[data-filter]");
  Array.prototype.forEach.call(searches, function (input) {
    var list = document.getElementById(input.getAttribute("data-filter"));
    var status = document.getElementById(input.getAttribute("data-status"));
    if (!list) {
      return;
    }
    var items = list.querySelectorAll("li[data-search]");
    input.addEventListener("input", function () {
      var q = input.value.trim().toLocaleLowerCase();
      var shown = 0;
      Array.prototype.forEach.call(items, function (li) {
        var hit = li.getAttribute("data-search").toLocaleLowerCase().indexOf(q) !== -1;
        li.hidden = !hit;
        if (hit) {
          shown++;
        }
      });
      if (status) {
        status.textContent = shown === 0 ? input.getAttribute("data-none")
          : input.getAttribute("data-count") + " " + shown;
      }
    });
  });
})();
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
(function () {
  "use strict";
  /* A SAML message for the organisation's login service (saml-post.html): submit it. */
  var form = document.querySelector("form[data-autosubmit]");
  if (form) {
    form.submit();
  }
})();
