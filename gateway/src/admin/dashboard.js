// anteroom's dashboard: polls /admin/overview every second, keeps the last
// five minutes in memory, draws them, and changes rooms through the admin
// API. No library, no request anywhere but this gateway's admin listener
// (the page's Content-Security-Policy allows nothing else).
"use strict";
(function () {
  var POLL_MS = 1000;
  var WINDOW_MS = 5 * 60 * 1000;
  var MIN_SPAN_MS = 60 * 1000;
  var REQUEST_TIMEOUT_MS = 5000;
  var TOKEN_KEY = "anteroom-admin-token";
  var MAX_SETTING = 10000000;

  var DESCRIPTIONS = {
    latency: "Mean upstream latency",
    errors: "Upstream errors per second",
    waiting: "Visitors waiting",
    inside: "Visitors inside (capacity dashed)",
    admissions: "Visitors admitted per minute",
    eta: "Estimated wait for the last in line",
    depth: "Requests in the buffer",
    drain: "Requests applied per second",
    pace: "Adaptive pace per minute (ceiling dashed)",
    p90: "Visitor-seen p90 at the site (target dashed)",
    error_rate: "Share of requests the site failed (limit dashed)"
  };

  // Why the adaptive pace is where it is (the `reason` of a room's
  // `adaptive` figures; docs/adaptive.md).
  var REASONS = {
    off: "off",
    ramp: "ramping up: the site keeps up",
    grow: "growing: the site keeps up",
    hold: "holding: close to the target",
    idle: "idle: too few requests to judge",
    latency: "cut: p90 above the target",
    errors: "cut: errors above the limit",
    site_down: "site down: at the floor",
    probe: "measuring the site's base latency",
    floor: "at the floor",
    ceiling: "at the ceiling"
  };

  var PHASES = {
    not_open: "Not open yet",
    pre_queue: "Pre-queue",
    open: "Open",
    closed: "Closed"
  };

  var numbers = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });
  var shares = new Intl.NumberFormat("en", { style: "percent", maximumFractionDigits: 2 });
  // Samples of the last WINDOW_MS: {at: performance.now(), data: overview or
  // null when the poll failed (a gap in the charts)}.
  var history = [];
  var rooms = {};
  var buffers = {};
  var token = readStoredToken();
  var tokenConfigured = null;
  var polling = false;
  var pollAgain = false;
  var timer = null;

  var byId = function (id) { return document.getElementById(id); };

  function readStoredToken() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || "";
    } catch (error) {
      return "";
    }
  }

  function storeToken(value) {
    token = value;
    try {
      if (value) {
        sessionStorage.setItem(TOKEN_KEY, value);
      } else {
        sessionStorage.removeItem(TOKEN_KEY);
      }
    } catch (error) {
      // Storage disabled: the token lives in this page only.
    }
  }

  function api(method, path, body) {
    var headers = { "Accept": "application/json" };
    if (token) {
      headers["Authorization"] = "Bearer " + token;
    }
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
    }
    var controller = new AbortController();
    var deadline = setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS);
    return fetch(path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      signal: controller.signal
    }).finally(function () { clearTimeout(deadline); });
  }

  function el(tag, attributes, children) {
    var element = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      var value = attributes[name];
      if (value === true) {
        element.setAttribute(name, "");
      } else if (value !== false && value !== null && value !== undefined) {
        element.setAttribute(name, String(value));
      }
    });
    (children || []).forEach(function (child) {
      element.append(child);
    });
    return element;
  }

  function setText(element, text) {
    if (element.textContent !== text) {
      element.textContent = text;
    }
  }

  function formatNumber(value) {
    return value === null || value === undefined || !isFinite(value) ? "–" : numbers.format(value);
  }

  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) {
      return "–";
    }
    seconds = Math.round(seconds);
    if (seconds < 60) {
      return seconds + " s";
    }
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) {
      return minutes + " min " + (seconds % 60) + " s";
    }
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  // An RFC 3339 time of the figures (written in the deployment's zone) as
  // its wall clock there: "2021-02-01 12:00 Europe/Rome".
  function formatWallClock(text, zone) {
    if (typeof text !== "string" || text.length < 16) {
      return "–";
    }
    return text.slice(0, 10) + " " + text.slice(11, 16) + (zone ? " " + zone : "");
  }

  // The draw's commitment, shortened (the whole in the element's title).
  function shortHex(hex) {
    return typeof hex === "string" && hex.length > 12 ? hex.slice(0, 12) + "…" : hex || "–";
  }

  function formatMilliseconds(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) {
      return "–";
    }
    var ms = seconds * 1000;
    return (ms < 10 ? ms.toFixed(2) : numbers.format(Math.round(ms))) + " ms";
  }

  function formatShare(value) {
    return value === null || value === undefined || !isFinite(value) ? "–" : shares.format(value);
  }

  function formatWholeMilliseconds(ms) {
    return ms === null || ms === undefined || !isFinite(ms) ? "–" : numbers.format(Math.round(ms)) + " ms";
  }

  // ---------------------------------------------------------------- status

  function showConnection(state, text) {
    var element = byId("connection");
    element.dataset.state = state;
    setText(element, text);
  }

  function showAuth(state, text) {
    var element = byId("auth-status");
    element.dataset.state = state;
    setText(element, text);
  }

  // ---------------------------------------------------------------- polling

  function pollNow() {
    if (polling) {
      pollAgain = true;
      return;
    }
    clearTimeout(timer);
    poll();
  }

  function poll() {
    polling = true;
    var started = performance.now();
    api("GET", "/admin/overview")
      .then(function (response) {
        if (response.status === 401) {
          forgetFigures();
          showConnection("refused", "Not signed in");
          if (token) {
            showAuth("refused", "The gateway refused this token (401). Check it and try again.");
          } else {
            showAuth("needed", "This gateway needs its admin token to show anything.");
          }
          return;
        }
        if (!response.ok) {
          record(null);
          showConnection("error", "The gateway answered " + response.status + "; retrying every second.");
          return;
        }
        return response.json().then(function (data) {
          record(data);
          render(data);
          showConnection("ok", "Live");
          if (!data.admin_token_configured) {
            showAuth("ok", "This gateway has no admin token: figures are open to read.");
          } else {
            showAuth("ok", "Token accepted.");
          }
        });
      })
      .catch(function (error) {
        record(null);
        if (error instanceof TypeError && token && /[^\x20-\x7e]/.test(token)) {
          showAuth("error", "The token holds characters that cannot be sent in a header.");
        }
        showConnection("unreachable", "The gateway does not answer; retrying every second.");
      })
      .finally(function () {
        polling = false;
        if (pollAgain) {
          pollAgain = false;
          poll();
          return;
        }
        var elapsed = performance.now() - started;
        timer = setTimeout(poll, Math.max(0, POLL_MS - elapsed));
      });
  }

  function record(data) {
    var now = performance.now();
    history.push({ at: now, data: data });
    while (history.length > 0 && history[0].at < now - WINDOW_MS) {
      history.shift();
    }
    if (data) {
      byId("updated").textContent = new Date().toLocaleTimeString();
    } else {
      // A gap in every chart (render draws them when there is data).
      drawAll();
    }
  }

  function forgetFigures() {
    history = [];
    rooms = {};
    buffers = {};
    byId("rooms").replaceChildren();
    byId("buffers").replaceChildren();
    byId("upstream").hidden = true;
    byId("buffers-error").hidden = true;
    byId("changes-note").hidden = true;
  }

  // ---------------------------------------------------------------- series

  // The value of `pick(sample.data)` for each sample: a gap where it is null.
  function series(pick) {
    return history.map(function (sample) {
      var value = sample.data ? pick(sample.data) : null;
      return [sample.at, value === undefined ? null : value];
    });
  }

  // A rate between consecutive samples: `pick` reads a counter, `per`
  // turns (counter delta, seconds) into the figure. A counter that went
  // back (a gateway restarted) or a missing sample gives a gap.
  function rates(pick, per) {
    var points = [];
    for (var index = 1; index < history.length; index++) {
      var before = history[index - 1];
      var after = history[index];
      var value = null;
      if (before.data && after.data) {
        var from = pick(before.data);
        var to = pick(after.data);
        var seconds = (after.at - before.at) / 1000;
        if (from !== null && to !== null && from !== undefined && to !== undefined && seconds > 0) {
          value = per(from, to, seconds);
        }
      }
      points.push([after.at, value]);
    }
    return points;
  }

  function latest(points) {
    for (var index = points.length - 1; index >= 0; index--) {
      if (points[index][1] !== null) {
        return points[index][1];
      }
    }
    return null;
  }

  function findRoom(data, name) {
    return (data.rooms || []).find(function (room) { return room.name === name; }) || null;
  }

  function findBuffer(data, name) {
    return (data.buffers || []).find(function (buffer) { return buffer.name === name; }) || null;
  }

  function errorTotal(data) {
    var errors = data.upstream.errors;
    return Object.keys(errors).reduce(function (sum, kind) { return sum + errors[kind]; }, 0);
  }

  function upstreamLatency() {
    return rates(
      function (data) { return data.upstream; },
      function (from, to) {
        var responses = to.responses - from.responses;
        var seconds = to.response_seconds_sum - from.response_seconds_sum;
        return responses > 0 && seconds >= 0 ? seconds / responses : null;
      }
    );
  }

  function upstreamErrorRate() {
    return rates(errorTotal, function (from, to, seconds) {
      return to >= from ? (to - from) / seconds : null;
    });
  }

  function drainRate(name) {
    return rates(
      function (data) {
        var buffer = findBuffer(data, name);
        return buffer ? buffer.done : null;
      },
      function (from, to, seconds) { return to >= from ? (to - from) / seconds : null; }
    );
  }

  // ---------------------------------------------------------------- charts

  var palette = null;

  function colours() {
    if (!palette) {
      var style = getComputedStyle(document.documentElement);
      var read = function (name) { return style.getPropertyValue(name).trim(); };
      palette = {
        one: read("--chart-1"),
        two: read("--chart-2"),
        grid: read("--chart-grid"),
        text: read("--muted")
      };
    }
    return palette;
  }

  // A round number at or above `value`, for the top of the scale.
  function ceiling(value) {
    if (value <= 0) {
      return 1;
    }
    var magnitude = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var index = 0; index < steps.length; index++) {
      if (steps[index] * magnitude >= value) {
        return steps[index] * magnitude;
      }
    }
    return 10 * magnitude;
  }

  // lines: [{points: [[at, value|null]], colour: "one"|"two", dashed}]
  function drawChart(canvas, lines, format, description) {
    var ratio = window.devicePixelRatio || 1;
    var width = canvas.clientWidth;
    var height = canvas.clientHeight;
    if (width === 0 || height === 0) {
      return;
    }
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    var context = canvas.getContext("2d");
    var colour = colours();
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);
    // The last five minutes, or, while the page is younger, the time it
    // has been open (at least a minute), so that early lines are not slivers.
    var now = performance.now();
    var age = history.length > 0 ? now - history[0].at : 0;
    var span = Math.min(WINDOW_MS, Math.max(MIN_SPAN_MS, age));
    var start = now - span;
    var highest = 0;
    var lowest = null;
    var count = 0;
    lines.forEach(function (line) {
      line.points.forEach(function (point) {
        if (point[1] !== null && point[0] >= start) {
          highest = Math.max(highest, point[1]);
          lowest = lowest === null ? point[1] : Math.min(lowest, point[1]);
          count++;
        }
      });
    });
    var top = ceiling(highest);
    var left = 4;
    var right = width - 4;
    var upper = 16;
    var lower = height - 16;
    var x = function (at) { return left + ((at - start) / span) * (right - left); };
    var y = function (value) { return lower - (value / top) * (lower - upper); };

    context.font = "11px system-ui, sans-serif";
    context.lineWidth = 1;
    context.strokeStyle = colour.grid;
    context.fillStyle = colour.text;
    [0, 0.5, 1].forEach(function (fraction) {
      var level = y(top * fraction);
      context.beginPath();
      context.moveTo(left, Math.round(level) + 0.5);
      context.lineTo(right, Math.round(level) + 0.5);
      context.stroke();
    });
    context.textBaseline = "bottom";
    context.textAlign = "left";
    context.fillText(format(top), left, upper - 2);
    context.textBaseline = "top";
    context.fillText(span < 2 * MIN_SPAN_MS ? Math.round(span / 1000) + " s ago" : Math.round(span / 60000) + " min ago", left, lower + 2);
    context.textAlign = "right";
    context.fillText("now", right, lower + 2);

    lines.forEach(function (line) {
      context.strokeStyle = line.colour === "two" ? colour.two : colour.one;
      context.lineWidth = 2;
      context.setLineDash(line.dashed ? [5, 4] : []);
      context.beginPath();
      var shown = function (point) { return point !== undefined && point[1] !== null && point[0] >= start; };
      // A value between two gaps (e.g. the only second with upstream
      // responses) has no line to draw: it gets a dot.
      var dots = [];
      line.points.forEach(function (point, index) {
        if (!shown(point)) {
          return;
        }
        if (shown(line.points[index - 1])) {
          context.lineTo(x(point[0]), y(point[1]));
        } else {
          context.moveTo(x(point[0]), y(point[1]));
          if (!shown(line.points[index + 1])) {
            dots.push(point);
          }
        }
      });
      context.stroke();
      context.fillStyle = context.strokeStyle;
      dots.forEach(function (point) {
        context.fillRect(x(point[0]) - 1.5, y(point[1]) - 1.5, 3, 3);
      });
    });
    context.setLineDash([]);

    canvas.dataset.samples = String(count);
    var current = latest(lines[0].points);
    canvas.setAttribute(
      "aria-label",
      count === 0
        ? description + ": no data yet"
        : description + ": now " + format(current) + "; over the time shown between " +
          format(lowest) + " and " + format(highest)
    );
  }

  function drawAll() {
    if (byId("upstream").hidden) {
      return;
    }
    drawChart(byId("chart-upstream-latency"), [{ points: upstreamLatency() }], formatMilliseconds, DESCRIPTIONS.latency);
    drawChart(byId("chart-upstream-errors"), [{ points: upstreamErrorRate() }], formatNumber, DESCRIPTIONS.errors);
    Object.keys(rooms).forEach(function (name) {
      var charts = rooms[name].charts;
      var pick = function (field) {
        return series(function (data) {
          var room = findRoom(data, name);
          return room ? room[field] : null;
        });
      };
      drawChart(charts.waiting, [{ points: pick("waiting") }], formatNumber, DESCRIPTIONS.waiting);
      drawChart(
        charts.inside,
        [{ points: pick("inside") }, { points: pick("capacity"), colour: "two", dashed: true }],
        formatNumber,
        DESCRIPTIONS.inside
      );
      drawChart(
        charts.admissions,
        [{ points: pick("admissions_per_minute") }],
        formatNumber,
        DESCRIPTIONS.admissions
      );
      drawChart(
        charts.eta,
        [{
          points: series(function (data) {
            var room = findRoom(data, name);
            return room ? room.eta_seconds_last_in_line || 0 : null;
          })
        }],
        formatDuration,
        DESCRIPTIONS.eta
      );
      if (rooms[name].adaptive.on.hidden) {
        return;
      }
      var adaptive = function (field) {
        return series(function (data) {
          var room = findRoom(data, name);
          return room && room.adaptive ? room.adaptive[field] : null;
        });
      };
      var dashed = function (field) { return { points: adaptive(field), colour: "two", dashed: true }; };
      drawChart(charts.pace, [{ points: adaptive("pace") }, dashed("ceiling")], formatNumber, DESCRIPTIONS.pace);
      drawChart(charts.p90, [{ points: adaptive("p90_ms") }, dashed("latency_p90_ms")], formatWholeMilliseconds, DESCRIPTIONS.p90);
      drawChart(charts.error_rate, [{ points: adaptive("error_rate") }, dashed("max_error_rate")], formatShare, DESCRIPTIONS.error_rate);
    });
    Object.keys(buffers).forEach(function (name) {
      var charts = buffers[name].charts;
      drawChart(
        charts.depth,
        [{
          points: series(function (data) {
            var buffer = findBuffer(data, name);
            return buffer ? buffer.depth : null;
          })
        }],
        formatNumber,
        DESCRIPTIONS.depth
      );
      drawChart(charts.drain, [{ points: drainRate(name) }], formatNumber, DESCRIPTIONS.drain);
    });
  }

  // ---------------------------------------------------------------- rendering

  function figure(label, attributes) {
    var value = el("dd", attributes, ["–"]);
    return { row: el("div", {}, [el("dt", {}, [label]), value]), value: value };
  }

  // `caption`: the text or nodes shown above; `description`: what a screen
  // reader hears (drawChart adds the figures).
  function chart(caption, description, attributes) {
    var canvas = el("canvas", Object.assign({ role: "img", "aria-label": description + ": no data yet" }, attributes));
    var shown = caption instanceof Array ? caption : [caption];
    return { box: el("figure", {}, [el("figcaption", { "aria-hidden": "true" }, shown), canvas]), canvas: canvas };
  }

  function legend(first, second) {
    return [
      el("span", { "class": "legend-1" }, [first]),
      " and ",
      el("span", { "class": "legend-2" }, [second + " (dashed)"])
    ];
  }

  function buildRoom(room) {
    var name = room.name;
    var id = "room-" + name;
    var values = {};
    var rows = [
      ["state", "State"],
      ["waiting", "Waiting"],
      ["inside", "Inside"],
      ["capacity", "Capacity"],
      ["arriving", "Arriving"],
      ["admissions_per_minute", "Admitted per minute (measured)"],
      ["admit_per_minute", "Admit per minute (setting)"],
      ["eta_seconds", "Estimated wait, last in line"]
    ].map(function (entry) {
      var made = figure(entry[1], { "data-room": name, "data-figure": entry[0] });
      values[entry[0]] = made.value;
      return made.row;
    });
    // A launch event's figures, shown while the room has an opening.
    var event = {};
    var eventRows = [
      ["phase", "Event"],
      ["opens_at", "Opens at"],
      ["opens_in", "Opens in"],
      ["pre_queue_from", "Pre-queue from"],
      ["pre_queue", "Pre-queue tickets"],
      ["drawn", "Drawn"],
      ["commitment", "Draw commitment"]
    ].map(function (entry) {
      var made = figure(entry[1], { "data-room": name, "data-event-figure": entry[0] });
      event[entry[0]] = made.value;
      return made.row;
    });
    var eventList = el("dl", {
      "class": "figures event", "data-room": name, "data-event": "", "aria-label": "Launch event of room " + name, hidden: true
    }, eventRows);
    var adaptive = buildAdaptive(name);
    var trouble = el("span", {
      "class": "badge", role: "status", "data-room": name, "data-figure": "trouble", hidden: true
    }, ["site having trouble"]);
    var charts = {
      waiting: chart("Waiting", DESCRIPTIONS.waiting, { "data-room": name, "data-chart": "waiting" }),
      inside: chart(legend("Inside", "capacity"), DESCRIPTIONS.inside, { "data-room": name, "data-chart": "inside" }),
      admissions: chart("Admitted per minute", DESCRIPTIONS.admissions, { "data-room": name, "data-chart": "admissions" }),
      eta: chart("Estimated wait", DESCRIPTIONS.eta, { "data-room": name, "data-chart": "eta" })
    };

    var capacity = el("input", {
      id: id + "-capacity", type: "number", min: 1, max: MAX_SETTING, step: 1, inputmode: "numeric",
      "data-room": name, "data-control": "capacity"
    });
    var rate = el("input", {
      id: id + "-rate", type: "number", min: 1, max: MAX_SETTING, step: 1, inputmode: "numeric",
      "data-room": name, "data-control": "admit_per_minute"
    });
    var apply = el("button", { type: "submit", "data-room": name, "data-action": "apply" }, ["Apply"]);
    var limits = el("form", { "class": "controls-limits", "aria-label": "Limits of room " + name }, [
      el("fieldset", {}, [
        el("legend", {}, ["Limits"]),
        el("div", { "class": "row" }, [
          el("div", {}, [el("label", { "for": id + "-capacity" }, ["Capacity"]), capacity]),
          el("div", {}, [el("label", { "for": id + "-rate" }, ["Admit per minute"]), rate]),
          apply
        ])
      ])
    ]);
    var stateButtons = {};
    var states = el("fieldset", {}, [el("legend", {}, ["State"])]);
    var stateRow = el("div", { "class": "row" });
    [["open", "Open"], ["paused", "Pause"], ["closed", "Close"]].forEach(function (entry) {
      var button = el("button", {
        type: "button", "data-room": name, "data-action": "state", "data-state-button": entry[0],
        "aria-pressed": "false"
      }, [entry[1]]);
      button.addEventListener("click", function () {
        if (entry[0] === "closed" &&
            !window.confirm("Close room " + name + "? New visitors get no place until it opens again.")) {
          return;
        }
        change(name, { state: entry[0] });
      });
      stateButtons[entry[0]] = button;
      stateRow.append(button);
    });
    states.append(stateRow);
    var result = el("p", { "class": "result", role: "status", "aria-live": "polite", "data-room": name, "data-figure": "change_result" });

    [capacity, rate].forEach(function (input) {
      input.addEventListener("input", function () { input.dataset.dirty = "true"; });
    });
    limits.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = {};
      var problems = [];
      [[capacity, "capacity", "Capacity"], [rate, "admit_per_minute", "Admit per minute"]].forEach(function (entry) {
        var text = entry[0].value.trim();
        if (text === "") {
          return;
        }
        var value = Number(text);
        if (!Number.isInteger(value) || value < 1 || value > MAX_SETTING) {
          problems.push(entry[2] + " must be a whole number from 1 to " + numbers.format(MAX_SETTING) + ".");
        } else {
          body[entry[1]] = value;
        }
      });
      if (problems.length > 0) {
        showResult(result, "error", problems.join(" "));
        return;
      }
      if (Object.keys(body).length === 0) {
        showResult(result, "error", "Nothing to change: give a capacity or a rate.");
        return;
      }
      change(name, body);
    });

    var section = el("section", { "class": "card room", id: id, "data-room": name, "aria-labelledby": id + "-title" }, [
      el("h2", { id: id + "-title" }, ["Room " + name, " ", trouble]),
      el("dl", { "class": "figures" }, rows),
      eventList,
      el("div", { "class": "charts" }, Object.keys(charts).map(function (key) { return charts[key].box; })),
      adaptive.box,
      el("div", { "class": "controls" }, [limits, states, result])
    ]);
    var canvases = {};
    Object.keys(charts).forEach(function (key) { canvases[key] = charts[key].canvas; });
    Object.keys(adaptive.charts).forEach(function (key) { canvases[key] = adaptive.charts[key].canvas; });
    return {
      section: section,
      values: values,
      event: event,
      eventList: eventList,
      adaptive: adaptive,
      trouble: trouble,
      charts: canvases,
      inputs: { capacity: capacity, admit_per_minute: rate },
      apply: apply,
      stateButtons: stateButtons,
      result: result
    };
  }

  // Adaptive admission: one line while it is off; while on, the reason,
  // the pace and what the site shows, and their charts against the limits.
  function buildAdaptive(name) {
    var off = el("p", { "class": "note", "data-room": name, "data-adaptive": "off", hidden: true }, ["adaptive admission: off"]);
    var values = {};
    var rows = [
      ["reason", "Adaptive: why"],
      ["changed", "Pace changed"],
      ["pace", "Pace per minute (adaptive)"],
      ["p90", "Visitor-seen p90 (target)"],
      ["error_rate", "Site errors (limit)"]
    ].map(function (entry) {
      var made = figure(entry[1], { "data-room": name, "data-adaptive-figure": entry[0] });
      values[entry[0]] = made.value;
      return made.row;
    });
    var charts = {
      pace: chart(legend("Pace per minute", "ceiling"), DESCRIPTIONS.pace, { "data-room": name, "data-chart": "pace" }),
      p90: chart(legend("Visitor-seen p90", "target"), DESCRIPTIONS.p90, { "data-room": name, "data-chart": "p90" }),
      error_rate: chart(legend("Site errors", "limit"), DESCRIPTIONS.error_rate, { "data-room": name, "data-chart": "error_rate" })
    };
    var on = el("div", { "data-room": name, "data-adaptive": "on", hidden: true }, [
      el("dl", { "class": "figures", "aria-label": "Adaptive admission of room " + name }, rows),
      el("div", { "class": "charts" }, Object.keys(charts).map(function (key) { return charts[key].box; }))
    ]);
    return { box: el("div", { "class": "adaptive" }, [off, on]), off: off, on: on, values: values, charts: charts };
  }

  function buildBuffer(buffer) {
    var name = buffer.name;
    var id = "buffer-" + name;
    var values = {};
    var rows = [
      ["depth", "Depth (unfinished)"],
      ["queued", "Queued"],
      ["in_flight", "Being applied"],
      ["retrying", "Waiting to retry"],
      ["dead", "Dead letters"],
      ["drain_rate", "Applied per second"],
      ["drain_per_second", "Pace (setting)"],
      ["done", "Done so far"]
    ].map(function (entry) {
      var made = figure(entry[1], { "data-buffer": name, "data-figure": entry[0] });
      values[entry[0]] = made.value;
      return made.row;
    });
    var depth = chart("Depth", DESCRIPTIONS.depth, { "data-buffer": name, "data-chart": "depth" });
    var drain = chart("Applied per second (drain rate)", DESCRIPTIONS.drain, { "data-buffer": name, "data-chart": "drain" });
    var section = el("section", { "class": "card buffer", id: id, "data-buffer": name, "aria-labelledby": id + "-title" }, [
      el("h2", { id: id + "-title" }, ["Buffer " + name + " (" + buffer.method + " " + buffer.path + ", room " + buffer.room + ")"]),
      el("dl", { "class": "figures" }, rows),
      el("div", { "class": "charts" }, [depth.box, drain.box])
    ]);
    return { section: section, values: values, charts: { depth: depth.canvas, drain: drain.canvas } };
  }

  function sameNames(known, listed) {
    var names = listed.map(function (item) { return item.name; });
    return names.length === Object.keys(known).length && names.every(function (name) { return known[name]; });
  }

  function render(data) {
    tokenConfigured = data.admin_token_configured;
    byId("upstream").hidden = false;
    var store = byId("store");
    setText(store, data.store_reachable ? "reachable" : "unreachable");
    store.dataset.state = data.store_reachable ? "ok" : "error";

    var upstream = data.upstream;
    setText(byId("upstream-in-flight"), formatNumber(upstream.in_flight) + " of " + formatNumber(upstream.max_in_flight));
    setText(byId("upstream-latency"), formatMilliseconds(latest(upstreamLatency())));
    setText(byId("upstream-error-rate"), formatNumber(latest(upstreamErrorRate())));
    setText(byId("upstream-responses"), formatNumber(upstream.responses));
    var kinds = Object.keys(upstream.errors).filter(function (kind) { return upstream.errors[kind] > 0; });
    setText(
      byId("upstream-errors"),
      kinds.length === 0
        ? "0"
        : kinds.map(function (kind) { return kind.replace(/_/g, " ") + " " + formatNumber(upstream.errors[kind]); }).join(", ")
    );

    if (!sameNames(rooms, data.rooms)) {
      rooms = {};
      byId("rooms").replaceChildren();
      data.rooms.forEach(function (room) {
        rooms[room.name] = buildRoom(room);
        byId("rooms").append(rooms[room.name].section);
      });
    }
    data.rooms.forEach(function (room) { renderRoom(rooms[room.name], room); });

    if (!sameNames(buffers, data.buffers)) {
      buffers = {};
      byId("buffers").replaceChildren();
      data.buffers.forEach(function (buffer) {
        buffers[buffer.name] = buildBuffer(buffer);
        byId("buffers").append(buffers[buffer.name].section);
      });
    }
    data.buffers.forEach(function (buffer) { renderBuffer(buffers[buffer.name], buffer); });
    var buffersError = byId("buffers-error");
    buffersError.hidden = !data.buffers_error;
    setText(buffersError, data.buffers_error ? "Buffers: " + data.buffers_error : "");

    var note = byId("changes-note");
    note.hidden = data.admin_token_configured;
    setText(note, data.admin_token_configured ? "" :
      "Changes need an admin token: set secrets.admin_token (or ANTEROOM_ADMIN_TOKEN) on the gateway. Until then this page only reads.");
    drawAll();
  }

  function renderRoom(view, room) {
    var values = view.values;
    setText(values.state, room.state);
    values.state.className = "state-" + room.state;
    setText(values.waiting, formatNumber(room.waiting));
    setText(values.inside, formatNumber(room.inside));
    setText(values.capacity, formatNumber(room.capacity));
    setText(values.arriving, formatNumber(room.arriving));
    setText(values.admissions_per_minute, formatNumber(room.admissions_per_minute));
    setText(values.admit_per_minute, formatNumber(room.admit_per_minute));
    setText(values.eta_seconds, room.waiting > 0 ? formatDuration(room.eta_seconds_last_in_line) : "nobody waits");
    renderEvent(view, room.event || {});
    renderAdaptive(view, room);
    Object.keys(view.stateButtons).forEach(function (state) {
      view.stateButtons[state].setAttribute("aria-pressed", String(state === room.state));
    });
    // Keep the inputs on the live settings unless the operator is typing.
    Object.keys(view.inputs).forEach(function (field) {
      var input = view.inputs[field];
      if (!input.dataset.dirty && document.activeElement !== input) {
        input.value = String(room[field]);
      }
    });
    var allowed = tokenConfigured !== false;
    [view.apply, view.inputs.capacity, view.inputs.admit_per_minute].concat(
      Object.keys(view.stateButtons).map(function (state) { return view.stateButtons[state]; })
    ).forEach(function (control) {
      control.disabled = !allowed;
    });
  }

  function renderEvent(view, event) {
    view.eventList.hidden = !event.opens_at;
    if (!event.opens_at) {
      return;
    }
    var shown = view.event;
    setText(shown.phase, PHASES[event.phase] || String(event.phase));
    shown.phase.className = "phase-" + event.phase;
    setText(shown.opens_at, formatWallClock(event.opens_at, event.time_zone));
    setText(shown.opens_in, event.drawn ? "opened" : formatDuration(event.opens_in_seconds));
    setText(shown.pre_queue_from, event.pre_queue_from ? formatWallClock(event.pre_queue_from, event.time_zone) : "no pre-queue");
    setText(shown.pre_queue, formatNumber(event.pre_queue) + (event.drawn ? " (final)" : " so far"));
    setText(shown.drawn, event.drawn ? "yes" : "not yet");
    setText(shown.commitment, shortHex(event.commitment));
    shown.commitment.title = event.commitment || "";
  }

  function renderAdaptive(view, room) {
    var adaptive = room.adaptive || {};
    var shown = view.adaptive;
    view.trouble.hidden = !adaptive.trouble;
    shown.off.hidden = !!adaptive.enabled;
    shown.on.hidden = !adaptive.enabled;
    if (!adaptive.enabled) {
      return;
    }
    var values = shown.values;
    setText(values.reason, REASONS[adaptive.reason] || String(adaptive.reason));
    values.reason.dataset.reason = String(adaptive.reason);
    // Both times are the store's: no clock of this browser comes into it.
    setText(values.changed, adaptive.changed_at === null || adaptive.changed_at === undefined
      ? "not yet"
      : formatDuration(Math.max(0, room.updated_unix_ms - adaptive.changed_at) / 1000) + " ago");
    setText(values.pace, formatNumber(adaptive.pace) + " of " + formatNumber(adaptive.ceiling) +
      (adaptive.phase ? " (" + adaptive.phase + ")" : ""));
    setText(values.p90, formatWholeMilliseconds(adaptive.p90_ms) + " (" + formatWholeMilliseconds(adaptive.latency_p90_ms) + ")");
    setText(values.error_rate, formatShare(adaptive.error_rate) + " (" + formatShare(adaptive.max_error_rate) + ")");
  }

  function renderBuffer(view, buffer) {
    var values = view.values;
    ["depth", "queued", "in_flight", "retrying", "dead", "drain_per_second", "done"].forEach(function (field) {
      setText(values[field], formatNumber(buffer[field]));
    });
    setText(values.drain_rate, formatNumber(latest(drainRate(buffer.name))));
  }

  function showResult(element, state, text) {
    element.dataset.state = state;
    setText(element, text);
  }

  function change(name, body) {
    var view = rooms[name];
    if (!view) {
      return;
    }
    var described = Object.keys(body).map(function (key) { return key.replace(/_/g, " ") + " " + body[key]; }).join(", ");
    showResult(view.result, "pending", "Sending: " + described + "…");
    api("PATCH", "/admin/rooms/" + encodeURIComponent(name), body)
      .then(function (response) {
        return response.json().catch(function () { return null; }).then(function (payload) {
          if (response.ok && payload) {
            Object.keys(view.inputs).forEach(function (field) { delete view.inputs[field].dataset.dirty; });
            renderRoom(view, payload);
            showResult(view.result, "ok", "Changed " + described + ". Now " + payload.state + ", capacity " +
              formatNumber(payload.capacity) + ", " + formatNumber(payload.admit_per_minute) + " per minute.");
            pollNow();
          } else {
            var reason = payload && payload.error ? payload.error : response.statusText;
            showResult(view.result, "error", "Not changed (" + response.status + "): " + reason);
          }
        });
      })
      .catch(function () {
        showResult(view.result, "error", "The gateway did not answer; the change may or may not have been made. Check the figures above.");
      });
  }

  // ---------------------------------------------------------------- start

  byId("token").value = token;
  byId("token-form").addEventListener("submit", function (event) {
    event.preventDefault();
    storeToken(byId("token").value.trim());
    showAuth("pending", "Checking the token…");
    pollNow();
  });
  byId("token-forget").addEventListener("click", function () {
    storeToken("");
    byId("token").value = "";
    forgetFigures();
    showAuth("none", "Token forgotten.");
    pollNow();
  });
  window.addEventListener("resize", drawAll);
  poll();
})();
