// Live password-strength meter: an enhancement only. Without JavaScript the
// server shows the verdict when the form comes back.
(function () {
  "use strict";
  var timers = new WeakMap();
  function update(input) {
    var box = input.form && input.form.querySelector(".meter");
    if (!box) return;
    var meter = box.querySelector("meter"), label = box.querySelector(".meter-label");
    if (!input.value) { meter.value = 0; label.textContent = ""; return; }
    var user = "";
    var f = input.form;
    if (f.elements.email) user = f.elements.email.value;
    else if (f.elements.local) user = f.elements.local.value;
    fetch("/api/v1/password-check", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ password: input.value, user: user }), credentials: "omit"
    }).then(function (r) { return r.json(); }).then(function (v) {
      meter.value = v.score;
      label.textContent = v.accepted ? v.strength.replace("veryWeak", "very weak") : (v.messages[0] || "too weak");
    }).catch(function () {});
  }
  document.addEventListener("input", function (e) {
    var t = e.target;
    if (!t.matches || !t.matches("input[data-meter]")) return;
    clearTimeout(timers.get(t));
    timers.set(t, setTimeout(function () { update(t); }, 250));
  });
})();
