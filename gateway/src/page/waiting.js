(function (T) {
  // The waiting page's script: follows the visitor's place (event stream,
  // else polling), updates the page and the tab's title in place, and lets
  // the visitor in when the turn comes. ES5 on purpose: it must run on old
  // phones and tablets. `T` is the language's words, baked in by page.rs at
  // startup.
  'use strict';
  var MAX_DELAY_MS = 30000;
  // A status request that has not settled by then counts as failed.
  var REQUEST_TIMEOUT_MS = 30000;

  var root = document.getElementById('anteroom');
  if (!root) {
    return;
  }
  var refreshSeconds = positiveInt(root.getAttribute('data-refresh'), 5);
  var statusUrl = root.getAttribute('data-status-url');

  // The page's own refresh sits in <noscript>, so with scripting on it never
  // starts; drop any other one so a reload never races the poller.
  var metas = document.getElementsByTagName('meta');
  for (var i = metas.length - 1; i >= 0; i--) {
    if ((metas[i].getAttribute('http-equiv') || '').toLowerCase() === 'refresh') {
      metas[i].parentNode.removeChild(metas[i]);
    }
  }

  if (!window.fetch || !statusUrl) {
    // Too old to poll: do what the meta refresh would have done.
    window.setTimeout(reload, refreshSeconds * 1000);
    return;
  }

  var failures = 0;
  var timer = null;
  var pollId = 0;
  var inFlight = false;
  var leaving = false;
  var lastPollAt = Date.now();

  // Follow the place over Server-Sent Events where the browser has them
  // (the gateway pushes changes from its cached figures); otherwise, or
  // when the gateway declines a stream, poll the status.
  var stream = null;
  showClock(positiveInt(root.getAttribute('data-updated'), 0) * 1000);
  if (window.EventSource) {
    follow();
  } else {
    schedule(refreshSeconds * 1000);
  }
  document.addEventListener('visibilitychange', function () {
    // Background tabs get throttled timers; catch up on return, but never
    // faster than the refresh interval (the rate limit is sized for it).
    if (!document.hidden && !inFlight && !leaving &&
        Date.now() - lastPollAt >= refreshSeconds * 1000) {
      schedule(0);
    }
  });

  function follow() {
    try {
      stream = new window.EventSource(statusUrl.replace('/_anteroom/status', '/_anteroom/events'));
    } catch (error) {
      stream = null;
      schedule(refreshSeconds * 1000);
      return;
    }
    stream.onmessage = function (event) {
      var status = null;
      try {
        status = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      lastPollAt = Date.now();
      succeeded(status, NaN);
    };
    // The turn has come: the status call lets the visitor in. Called from
    // the event itself, not a timer: a background tab's timers may be
    // throttled to once a minute, and the turn is held only so long.
    stream.addEventListener('turn', function () {
      stopFollowing();
      if (timer !== null) {
        window.clearTimeout(timer);
        timer = null;
      }
      poll();
    });
    // Another tab of this visitor took this stream's place (a ticket holds
    // a few streams at once): poll instead of reconnecting, which would
    // only take another tab's place in turn.
    stream.addEventListener('replaced', function () {
      stopFollowing();
      schedule(refreshSeconds * 1000);
    });
    stream.onerror = function () {
      // A dropped stream reconnects by itself; one the gateway declined
      // (no place, too many streams) is closed: poll instead.
      if (stream && stream.readyState === 2) {
        stopFollowing();
        schedule(refreshSeconds * 1000);
      }
    };
  }

  function stopFollowing() {
    if (stream) {
      stream.close();
      stream = null;
    }
  }

  function schedule(delayMs) {
    if (timer !== null) {
      window.clearTimeout(timer);
    }
    timer = window.setTimeout(poll, delayMs);
  }

  function poll() {
    timer = null;
    inFlight = true;
    lastPollAt = Date.now();
    var id = ++pollId;
    var watchdog = window.setTimeout(function () {
      if (id === pollId && inFlight) {
        pollId++;
        failed(0);
      }
    }, REQUEST_TIMEOUT_MS);
    var serverTime = NaN;
    window.fetch(statusUrl, {
      headers: { Accept: 'application/json' },
      credentials: 'same-origin',
      cache: 'no-store'
    }).then(function (response) {
      if (!response.ok) {
        var error = new Error('status ' + response.status);
        error.retryAfterSeconds = positiveInt(response.headers.get('Retry-After'), 0);
        throw error;
      }
      serverTime = Date.parse(response.headers.get('Date') || '');
      return response.json();
    }).then(function (status) {
      if (id !== pollId) {
        return;
      }
      window.clearTimeout(watchdog);
      inFlight = false;
      succeeded(status, serverTime);
    }).then(null, function (error) {
      if (id !== pollId) {
        return;
      }
      window.clearTimeout(watchdog);
      failed(error && error.retryAfterSeconds ? error.retryAfterSeconds * 1000 : 0);
    });
  }

  function succeeded(status, serverTime) {
    if (!status || typeof status !== 'object') {
      failed(0);
      return;
    }
    if (status.state === 'admitted') {
      letIn();
      return;
    }
    if (status.state === 'none') {
      // The place was lost (a ticket of a store that forgot it): reloading
      // takes a new one.
      leaving = true;
      reload();
      return;
    }
    failures = 0;
    var next = positiveInt(status.refresh_seconds, 0);
    if (next > 0 && next <= 300) {
      refreshSeconds = next;
    }
    var position = typeof status.position === 'number' && status.position >= 0 ? Math.floor(status.position) : null;
    var eta = typeof status.eta_seconds === 'number' && status.eta_seconds >= 0 ? Math.floor(status.eta_seconds) : null;
    var stopped = status.room_state === 'paused' || status.room_state === 'closed';
    setText('anteroom-position-label', position === null ? T.position_unknown : T.position_before);
    setText('anteroom-position', position === null ? '' : groupDigits(position));
    setText('anteroom-ahead', position === null ? '' : aheadLine(position));
    setText('anteroom-eta', stopped ? T.eta_paused : etaLine(eta));
    setHidden('anteroom-paused', status.room_state !== 'paused');
    setHidden('anteroom-closed', status.room_state !== 'closed');
    if (document.title !== titleFor(position)) {
      document.title = titleFor(position);
    }
    showClock(isNaN(serverTime) ? Date.now() : serverTime);
    if (!stream) {
      schedule(refreshSeconds * 1000);
    }
  }

  function failed(retryAfterMs) {
    // Never tell the visitor: their place is safe. Back off, with jitter so
    // a crowd of pages does not retry in step after an outage.
    inFlight = false;
    failures++;
    var backoff = refreshSeconds * 1000 * Math.pow(2, Math.min(failures, 6));
    var delay = Math.max(backoff, retryAfterMs) * (1 + Math.random() * 0.25);
    schedule(Math.round(Math.min(MAX_DELAY_MS, delay)));
  }

  // The status call let the visitor in: the pass is set, and this page
  // sits at the address they asked for. A tab in the background gets a
  // title that says so, and goes on when the visitor looks at it again (the
  // pass is theirs until `session_seconds` without a request).
  function letIn() {
    leaving = true;
    stopFollowing();
    document.title = T.turn_title;
    setHidden('anteroom-turn', false);
    if (!document.hidden) {
      reload();
      return;
    }
    document.addEventListener('visibilitychange', function () {
      if (!document.hidden) {
        reload();
      }
    });
  }

  function reload() {
    window.location.reload();
  }

  function setHidden(elementId, hidden) {
    var element = document.getElementById(elementId);
    if (element && element.hidden !== hidden) {
      element.hidden = hidden;
    }
  }

  // Keep in step with `push_title_with_position` in page/format.rs.
  function titleFor(position) {
    return position === null ? T.title : T.title_position.replace('{position}', groupDigits(position));
  }

  function setText(elementId, text) {
    var element = document.getElementById(elementId);
    // Unchanged text is left alone so screen readers do not repeat it.
    if (element && element.textContent !== text) {
      element.textContent = text;
    }
  }

  function showClock(unixMs) {
    if (!(unixMs > 0)) {
      return;
    }
    var date = new Date(unixMs);
    var text;
    try {
      text = date.toLocaleTimeString(T.code, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
    } catch (e) {
      text = pad(date.getUTCHours()) + ':' + pad(date.getUTCMinutes()) + ':' + pad(date.getUTCSeconds()) + ' UTC';
    }
    setText('anteroom-updated', text);
  }

  function pad(n) {
    return n < 10 ? '0' + n : String(n);
  }

  function positiveInt(value, fallback) {
    var n = typeof value === 'number' ? value : parseInt(value, 10);
    return isFinite(n) && n >= 0 ? Math.floor(n) : fallback;
  }

  // Keep in step with `push_grouped_digits` in page/format.rs.
  function groupDigits(n) {
    var digits = String(n);
    var out = '';
    for (var k = 0; k < digits.length; k++) {
      if (k > 0 && (digits.length - k) % 3 === 0) {
        out += T.digit_separator;
      }
      out += digits.charAt(k);
    }
    return out;
  }

  // Keep in step with `push_ahead_line` in page/format.rs.
  function aheadLine(position) {
    var ahead = position > 1 ? position - 1 : 0;
    return ahead === 0 ? T.ahead_none : T.ahead_before + groupDigits(ahead);
  }

  // Keep in step with `push_eta_line` in page/format.rs.
  function etaLine(seconds) {
    return seconds === null ? T.eta_unknown : T.eta_before + friendlyEta(seconds);
  }

  // Keep in step with `push_friendly_eta` in page/format.rs: same buckets, same words.
  function friendlyEta(s) {
    if (s < 60) {
      return T.eta_less_than_a_minute;
    }
    if (s < 600) {
      var n = Math.floor((s + 30) / 60);
      return T.eta_about + n + ' ' + (n === 1 ? T.minute : T.minutes);
    }
    if (s < 3600) {
      var m = Math.floor(s / 60);
      var step = m < 30 ? 5 : 10;
      var low = Math.floor(m / step) * step;
      return T.eta_about + low + '\u2013' + (low + step) + ' ' + T.minutes;
    }
    if (s < 7200) {
      return T.eta_about + '1\u20132 ' + T.hours;
    }
    return T.eta_about + Math.floor((s + 1800) / 3600) + ' ' + T.hours;
  }
})
