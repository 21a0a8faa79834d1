// Live update of a run in progress: the server sends the HTML of new events (rendered and
// escaped on the server) as server-sent events; this appends them. When the run ends the page
// reloads to show the final diff and proof.
(function () {
  var list = document.getElementById('events');
  var source = list && list.getAttribute('data-live');
  if (!source) return;
  var events = new EventSource(source);
  var append = function (e) { list.insertAdjacentHTML('beforeend', e.data); };
  events.addEventListener('append', append);
  events.addEventListener('final', function (e) { append(e); events.close(); location.reload(); });
  events.addEventListener('finished', function () { events.close(); location.reload(); });
  var badge = document.getElementById('live');
  events.onopen = function () { if (badge) badge.textContent = 'live'; };
})();
