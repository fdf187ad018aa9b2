(function (T) {
  // The waiting page's script: follows the visitor's place (event stream,
  // else polling), updates the page and the tab's title in place, and lets
  // the visitor in when the turn comes. ES5 on purpose: it must run on old
  // phones and tablets. `T` is the language's words, baked in by page.rs at
  // startup. The not-open page (`data-page="not_open"`) runs it too: with
  // no place to follow it polls, keeps the opening's time and countdown
  // up to date, and reloads once the door opens (the reload takes the
  // ticket).
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
  var notOpenPage = root.getAttribute('data-page') === 'not_open';

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
  // The opening by the store's count (`opens_in_seconds`), as a time on
  // this page's own steady clock: the visitor's clock only measures the
  // seconds since the gateway last said, so a clock set wrong does not
  // move the countdown. `null`: no countdown.
  var opensAtMs = null;
  var ticker = null;
  showClock(positiveInt(root.getAttribute('data-updated'), 0) * 1000);
  countDownFrom(optionalInt(root.getAttribute('data-opens-in')));
  if (window.EventSource && !notOpenPage) {
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
    if (status.state === 'none' || notOpenPage !== (status.state === 'not_open')) {
      // The place was lost (a ticket of a store that forgot it), or this
      // is the other page's standing: the door has opened to a visitor on
      // the not-open page, or a waiting visitor's ticket is void before
      // the pre-queue. Reloading asks the door again, which hands out the
      // ticket and the right page.
      leaving = true;
      reload();
      return;
    }
    failures = 0;
    var next = positiveInt(status.refresh_seconds, 0);
    if (next > 0 && next <= 300) {
      refreshSeconds = next;
    }
    showEvent(status);
    if (!notOpenPage) {
      showPlace(status);
    }
    showClock(isNaN(serverTime) ? Date.now() : serverTime);
    if (!stream) {
      schedule(refreshSeconds * 1000);
    }
  }

  // The place in line, or the pre-queue ticket before the draw.
  function showPlace(status) {
    var position = optionalInt(status.position);
    var eta = optionalInt(status.eta_seconds);
    var ticket = status.state === 'pre_queue' ? optionalInt(status.ticket) : null;
    var size = optionalInt(status.pre_queue);
    var place = optionalInt(status.draw_place);
    var stopped = status.room_state === 'paused' || status.room_state === 'closed';
    // The notice says why there is no estimate.
    var trouble = status.site === 'trouble';
    if (ticket !== null) {
      setText('anteroom-position-label', T.pre_queue_ticket_before);
      setText('anteroom-position', groupDigits(ticket));
      setText('anteroom-ahead', '');
      setText('anteroom-eta', '');
      setText('anteroom-pre-queue', size === null ? '' : T.pre_queue_size_before + groupDigits(size));
    } else {
      setText('anteroom-position-label', position === null ? T.position_unknown : T.position_before);
      setText('anteroom-position', position === null ? '' : groupDigits(position));
      setText('anteroom-ahead', position === null ? '' : aheadLine(position));
      setText('anteroom-eta', trouble ? '' : stopped ? T.eta_paused : etaLine(eta));
      setText('anteroom-pre-queue', '');
    }
    setText('anteroom-draw-place', place !== null && size !== null ? drawPlaceLine(place, size) : '');
    setHidden('anteroom-draw', !status.draw_url || (ticket === null && place === null));
    setHidden('anteroom-paused', status.room_state !== 'paused');
    setHidden('anteroom-closed', status.room_state !== 'closed');
    setHidden('anteroom-trouble', !trouble);
    var title = titleFor(ticket === null ? position : null);
    if (document.title !== title) {
      document.title = title;
    }
  }

  // The launch event's lines, from every status: an opening the operator
  // moves shows its new time and countdown at once, without a reload.
  // Keep in step with `Pages::waiting` in page.rs.
  function showEvent(status) {
    var before = status.state === 'not_open' || status.state === 'pre_queue';
    var opens = before ? wallClock(status.opens_at) : null;
    var from = status.state === 'not_open' ? wallClock(status.pre_queue_from) : null;
    setText('anteroom-opens', opens ? opensLine(opens) : '');
    setText('anteroom-pre-queue-from', from && opens ? preQueueFromLine(from, opens) : '');
    setText('anteroom-same-chance', opens && (status.state === 'pre_queue' || from) ? sameChance(opens) : '');
    countDownFrom(before ? optionalInt(status.opens_in_seconds) : null);
  }

  function countDownFrom(seconds) {
    opensAtMs = seconds === null ? null : steadyNow() + seconds * 1000;
    tick();
    if (opensAtMs !== null && ticker === null) {
      ticker = window.setInterval(tick, 1000);
    } else if (opensAtMs === null && ticker !== null) {
      window.clearInterval(ticker);
      ticker = null;
    }
  }

  function tick() {
    if (opensAtMs === null) {
      setText('anteroom-countdown', '');
      return;
    }
    var left = Math.max(0, Math.ceil((opensAtMs - steadyNow()) / 1000));
    setText('anteroom-countdown', countdownLine(left));
  }

  function steadyNow() {
    return window.performance && window.performance.now ? window.performance.now() : Date.now();
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

  // A whole number of at least 0 (a JSON number, or an attribute's
  // digits), else `null`.
  function optionalInt(value) {
    return positiveInt(value === '' || value === null ? NaN : value, null);
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

  // Keep in step with `push_marked` in page/format.rs.
  function fill(pattern, values) {
    return pattern.replace(/\{([a-z_]+)\}/g, function (mark, name) {
      return values.hasOwnProperty(name) ? values[name] : mark;
    });
  }

  // An RFC 3339 time of the status JSON, which the gateway writes in the
  // deployment's time zone: its digits are what a clock on the wall there
  // shows, so no time zone database is needed here. `null` if it is not one.
  function wallClock(text) {
    var parts = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)/.exec(typeof text === 'string' ? text : '');
    if (!parts) {
      return null;
    }
    var year = +parts[1];
    var month = +parts[2];
    var day = +parts[3];
    // getUTCDay: 0 = Sunday; the language files list Monday first.
    var weekday = (new Date(Date.UTC(year, month - 1, day)).getUTCDay() + 6) % 7;
    return { month: month, day: day, weekday: weekday, hour: +parts[4], minute: +parts[5] };
  }

  // Keep in step with `push_clock_time` in page/format.rs.
  function clockTime(at) {
    return pad(at.hour) + ':' + pad(at.minute);
  }

  // Keep in step with `push_date` in page/format.rs.
  function dateText(at) {
    return fill(T.date_format, {
      weekday: nthName(T.weekday_names, at.weekday),
      day: String(at.day),
      month: nthName(T.month_names, at.month - 1)
    });
  }

  function nthName(names, index) {
    var name = names.split(',')[index];
    return name ? name.replace(/^\s+|\s+$/g, '') : '';
  }

  // Keep in step with `push_opens_line` in page/format.rs.
  function opensLine(at) {
    return fill(T.opens_line, { time: clockTime(at), date: dateText(at) });
  }

  // Keep in step with `push_pre_queue_from_line` in page/format.rs.
  function preQueueFromLine(from, opens) {
    var sameDay = from.month === opens.month && from.day === opens.day;
    return fill(T.pre_queue_from_line, { when: clockTime(from) + (sameDay ? '' : ' (' + dateText(from) + ')') });
  }

  // Keep in step with `push_same_chance` in page/format.rs.
  function sameChance(opens) {
    return fill(T.same_chance, { time: clockTime(opens) });
  }

  // Keep in step with `push_draw_place_line` in page/format.rs.
  function drawPlaceLine(place, size) {
    return fill(T.draw_place_line, { place: groupDigits(place), size: groupDigits(size) });
  }

  // Keep in step with `push_countdown_line` in page/format.rs.
  function countdownLine(seconds) {
    return seconds === 0 ? T.countdown_now : T.countdown_before + timeLeft(seconds);
  }

  // Keep in step with `push_time_left` in page/format.rs: the two largest
  // units, the smaller left out when it is zero.
  function timeLeft(s) {
    var units = s >= 86400 ? [[Math.floor(s / 86400), T.day, T.days], [Math.floor(s % 86400 / 3600), T.hour, T.hours]]
      : s >= 3600 ? [[Math.floor(s / 3600), T.hour, T.hours], [Math.floor(s % 3600 / 60), T.minute, T.minutes]]
        : [[Math.floor(s / 60), T.minute, T.minutes], [s % 60, T.second, T.seconds]];
    var out = [];
    for (var k = 0; k < units.length; k++) {
      if (units[k][0] > 0) {
        out.push(units[k][0] + ' ' + (units[k][0] === 1 ? units[k][1] : units[k][2]));
      }
    }
    return out.join(' ');
  }
})
