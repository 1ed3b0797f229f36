// The theme before the first paint (a blocking script, so that a dark page never flashes light): the choice
// saved on this browser, else the system's. app.js switches it afterwards.
(function () {
  var saved = localStorage.getItem("cairn-theme");
  var dark = saved ? saved === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = dark ? "dark" : "light";
})();
