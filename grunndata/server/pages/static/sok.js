// Answers as you type on /legemidler: the page works without this (a GET form); with it, the
// results fragment of our own route replaces the list 250 ms after the last key.
(function () {
  "use strict";
  var input = document.getElementById("q");
  var results = document.getElementById("treff");
  if (!input || !results || !window.fetch) { return; }
  var timer = null;
  var asked = 0;
  input.addEventListener("input", function () {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(function () {
      var query = input.value.trim();
      var mine = ++asked;
      fetch("/legemidler?fragment=1&q=" + encodeURIComponent(query), { headers: { Accept: "text/html" } })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          if (mine !== asked) { return; }  // an older answer arriving late: a newer one is coming
          var box = document.createElement("div");
          box.innerHTML = html;
          var fresh = box.querySelector("#treff");
          if (fresh) { results.innerHTML = fresh.innerHTML; }
          history.replaceState(null, "", query ? "/legemidler?q=" + encodeURIComponent(query) : "/legemidler");
        })
        .catch(function () { /* offline for a moment: the form still works */ });
    }, 250);
  });
})();
