// cccp: a little script on top of pages that work without it.
(function () {
  "use strict";

  // Dashboard: filter rows while typing (the form's ?q= works without JS).
  var filter = document.getElementById("filter");
  if (filter) {
    var rows = document.querySelectorAll("#projects tbody tr[data-search]");
    var count = document.getElementById("count");
    filter.addEventListener("input", function () {
      var q = filter.value.trim().toLowerCase(), n = 0;
      rows.forEach(function (r) {
        var show = !q || r.dataset.search.indexOf(q) >= 0;
        r.hidden = !show;
        if (show) n++;
      });
      if (count) count.textContent = n;
    });
  }

  // Run page: open at the first line that explains the failure (also when
  // a link pointed at the failed stage as a whole).
  var head = document.querySelector("[data-first-line]");
  if (head) {
    var id = head.dataset.firstLine;
    var stage = id.slice(0, id.lastIndexOf("-L"));
    var h = location.hash;
    if ((!h || h === "#failure" || h === "#stage-" + stage) && document.getElementById(id)) {
      location.replace("#" + id);
    }
  }

  // Run page: stream the logs of running stages; reload when one ends so
  // the page shows the result (and opens at a failure).
  var live = document.querySelectorAll("pre[data-events]");
  live.forEach(function (pre) {
    var stage = pre.dataset.stage;
    var counter = document.getElementById("lines-" + stage);
    var es = new EventSource(pre.dataset.events);
    es.addEventListener("line", function (ev) {
      var d = JSON.parse(ev.data);
      var atEnd = window.innerHeight + window.scrollY >= document.body.scrollHeight - 60;
      var span = document.createElement("span");
      span.className = "line";
      span.id = stage + "-L" + d.n;
      var a = document.createElement("a");
      a.className = "ln";
      a.href = "#" + span.id;
      a.textContent = d.n;
      if (d.time) a.title = d.time;
      span.appendChild(a);
      span.appendChild(document.createTextNode(d.text));
      pre.appendChild(span);
      if (counter) counter.textContent = d.n;
      if (atEnd) window.scrollTo(0, document.body.scrollHeight);
    });
    es.addEventListener("done", function () {
      es.close();
      setTimeout(function () { location.reload(); }, 300);
    });
  });

  // An unfinished run without a live log (queued, or between stages):
  // look again in a few seconds.
  if (document.querySelector("[data-pending]") && live.length === 0) {
    setTimeout(function () { location.reload(); }, 4000);
  }
})();
