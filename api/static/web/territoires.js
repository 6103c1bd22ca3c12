// Suggestions of territory names while typing (progressive enhancement: without this
// script the server resolves the names as typed). Fills each field's <datalist> from the
// referential: GET /api/v1/territories?q=…
(function () {
  "use strict";
  var LEVELS = { commune: "commune", epci: "intercommunalité", departement: "département", region: "région" };

  function label(t) {
    // The value the server resolves back to this territory: a commune with its département.
    if (t.level === "commune" && t.departement) return t.name + " (" + t.departement.code + ")";
    return t.name;
  }

  function attach(input) {
    var list = document.getElementById(input.getAttribute("data-territoires"));
    if (!list) return;
    var timer = null;
    var asked = "";
    input.addEventListener("input", function () {
      var q = input.value.trim();
      if (q.length < 2 || q === asked) return;
      clearTimeout(timer);
      timer = setTimeout(function () {
        asked = q;
        var url = "/api/v1/territories?limit=8&level=commune&level=epci&level=departement&level=region&q=" + encodeURIComponent(q);
        fetch(url, { headers: { Accept: "application/json" } })
          .then(function (r) { return r.ok ? r.json() : { items: [] }; })
          .then(function (page) {
            if (input.value.trim() !== q) return;
            list.textContent = "";
            (page.items || []).forEach(function (t) {
              var option = document.createElement("option");
              option.value = label(t);
              option.label = (LEVELS[t.level] || t.level) + (t.code ? " " + t.code : "");
              list.appendChild(option);
            });
          })
          .catch(function () { /* suggestions only: the form works without them */ });
      }, 200);
    });
  }

  document.querySelectorAll("input[data-territoires]").forEach(attach);
})();
