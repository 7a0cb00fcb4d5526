// The profile page's journey: the channel boxes show or hide that channel's entries.
(function () {
  "use strict";
  function bind(root) {
    var boxes = root.querySelectorAll("[data-journey-channel]");
    function apply() {
      var shown = {};
      boxes.forEach(function (box) { shown[box.value] = box.checked; });
      root.querySelectorAll("tbody tr[data-channel]").forEach(function (row) {
        var channel = row.getAttribute("data-channel");
        row.hidden = channel !== "none" && shown[channel] === false;
      });
    }
    boxes.forEach(function (box) { box.addEventListener("change", apply); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-journey]").forEach(bind);
  });
})();
