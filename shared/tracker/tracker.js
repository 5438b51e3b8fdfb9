/*! cdp-tracker: first-party website tracker of the customer data platform. No dependencies.
 *
 *   <script async src="https://COLLECT_HOST/tracker.js" data-site-key="wk_demo_shop"></script>
 *
 * Calls made before the script loads are queued and run on load:
 *   window.cdp = window.cdp || []; cdp.push(['track', 'Coupon Used', {code: 'WINTER'}]);
 *
 * Script attributes: data-site-key (the write key), data-endpoint (default: where the script is served from),
 * data-auto-page="false" (no page view on load), data-cookie-domain (share the id across subdomains).
 * Every call is a Segment-spec event; they are batched to {endpoint}/v1/batch (sendBeacon / fetch with a
 * text/plain body, which needs no CORS preflight) with a 1x1 GIF GET fallback to {endpoint}/v1/pixel/batch.
 * Nothing here ever throws into the host page.
 */
(function (window, document) {
  'use strict';

  var VERSION = '1.0.0';
  var LIBRARY = 'cdp-tracker';
  var AID_KEY = '_cdp_aid';
  var UID_KEY = '_cdp_uid';
  var YEAR_SECONDS = 365 * 24 * 60 * 60;
  var FLUSH_DELAY_MS = 300;
  var MAX_QUEUE = 50; // events; a full queue is sent at once
  var MAX_EVENT_BYTES = 32 * 1024; // the collector's limit per event
  var MAX_POST_BYTES = 60 * 1024; // keep-alive requests share a 64 KiB budget in browsers
  var MAX_PIXEL_URL = 8000; // characters of one pixel URL
  var RETRIES = 3;
  // Identifiers seen in the wild that must never become a user id.
  var JUNK_ID = /^(|0|-1|null|none|undefined|anonymous|guest|\[object object\]|nan|[0\-]+)$/i;

  var existing = window.cdp;
  if (existing && existing.__cdpTracker) return; // loaded twice: keep the first

  function warn(message, error) {
    try {
      if (window.console && window.console.warn) window.console.warn('[cdp] ' + message, error || '');
    } catch (e) { /* nothing */ }
  }

  // ---- ids ------------------------------------------------------------------------------------
  function uuid4() {
    try {
      if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
    } catch (e) { /* not a secure context */ }
    var bytes = new Array(16);
    try {
      var random = new Uint8Array(16);
      window.crypto.getRandomValues(random);
      for (var i = 0; i < 16; i++) bytes[i] = random[i];
    } catch (e) {
      for (var j = 0; j < 16; j++) bytes[j] = Math.floor(Math.random() * 256);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = bytes.map(function (b) { return (b + 0x100).toString(16).slice(1); }).join('');
    return hex.slice(0, 8) + '-' + hex.slice(8, 12) + '-' + hex.slice(12, 16) + '-' + hex.slice(16, 20) + '-' +
      hex.slice(20);
  }

  function cleanId(value) {
    if (value === null || value === undefined) return null;
    if (typeof value !== 'string' && typeof value !== 'number') return null;
    var text = String(value).trim();
    return JUNK_ID.test(text) || text.length > 256 ? null : text;
  }

  // ---- storage: a first-party cookie, localStorage as the fallback ----------------------------
  var config = { cookieDomain: null };

  function readCookie(name) {
    try {
      var parts = document.cookie ? document.cookie.split(';') : [];
      for (var i = 0; i < parts.length; i++) {
        var pair = parts[i].trim();
        if (pair.indexOf(name + '=') === 0) return decodeURIComponent(pair.slice(name.length + 1));
      }
    } catch (e) { /* cookies blocked */ }
    return null;
  }

  function writeCookie(name, value, maxAge) {
    try {
      var cookie = name + '=' + encodeURIComponent(value) + '; Max-Age=' + maxAge + '; Path=/; SameSite=Lax';
      if (config.cookieDomain) cookie += '; Domain=' + config.cookieDomain;
      if (window.location.protocol === 'https:') cookie += '; Secure';
      document.cookie = cookie;
    } catch (e) { /* cookies blocked */ }
  }

  function readStored(name) {
    try {
      return window.localStorage.getItem(name);
    } catch (e) {
      return null;
    }
  }

  function writeStored(name, value) {
    try {
      if (value === null) window.localStorage.removeItem(name);
      else window.localStorage.setItem(name, value);
    } catch (e) { /* storage blocked or full */ }
  }

  function persist(name, value) {
    if (value === null) writeCookie(name, '', 0);
    else writeCookie(name, value, YEAR_SECONDS); // refreshed on every load: one year from the last visit
    writeStored(name, value);
  }

  var state = { anonymousId: null, userId: null };

  function loadIds() {
    var aid = cleanId(readCookie(AID_KEY)) || cleanId(readStored(AID_KEY)) || uuid4();
    state.anonymousId = aid;
    persist(AID_KEY, aid);
    state.userId = cleanId(readCookie(UID_KEY)) || cleanId(readStored(UID_KEY));
    if (state.userId) persist(UID_KEY, state.userId);
  }

  // ---- context --------------------------------------------------------------------------------
  // For SPA navigations (page() again without a load) the referrer is the previous page's URL.
  var lastPageUrl = null;
  var spaReferrer = null;

  function currentUrl() {
    var href = window.location.href;
    var hash = href.indexOf('#');
    return hash >= 0 ? href.slice(0, hash) : href;
  }

  function pageInfo() {
    return {
      url: currentUrl(),
      path: window.location.pathname,
      referrer: spaReferrer !== null ? spaReferrer : (document.referrer || ''),
      title: document.title,
      search: window.location.search
    };
  }

  function campaign() {
    var found = {};
    var any = false;
    try {
      var params = new URLSearchParams(window.location.search);
      var names = { source: 'utm_source', medium: 'utm_medium', name: 'utm_campaign', term: 'utm_term',
        content: 'utm_content' };
      Object.keys(names).forEach(function (key) {
        var value = params.get(names[key]);
        if (value) {
          found[key] = value;
          any = true;
        }
      });
    } catch (e) { /* no URLSearchParams */ }
    return any ? found : null;
  }

  function timezone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone;
    } catch (e) {
      return undefined;
    }
  }

  function context(page) {
    var ctx = {
      page: page || pageInfo(),
      userAgent: navigator.userAgent,
      locale: navigator.language || navigator.userLanguage,
      timezone: timezone(),
      library: { name: LIBRARY, version: VERSION }
    };
    try {
      ctx.screen = { width: window.screen.width, height: window.screen.height,
        density: window.devicePixelRatio || 1 };
    } catch (e) { /* no screen */ }
    var utm = campaign();
    if (utm) ctx.campaign = utm;
    return ctx;
  }

  function object(value) {
    return value && typeof value === 'object' && !Array.isArray(value) ? value : {};
  }

  function copy(value) {
    var out = {};
    var source = object(value);
    Object.keys(source).forEach(function (key) {
      if (source[key] !== undefined && typeof source[key] !== 'function') out[key] = source[key];
    });
    return out;
  }

  // ---- sending --------------------------------------------------------------------------------
  var queue = [];
  var timer = null;
  var inFlight = [];
  var retrying = []; // batches waiting for a retry; sent at once if the page goes away

  function bytes(text) {
    try {
      return new TextEncoder().encode(text).length;
    } catch (e) {
      return unescape(encodeURIComponent(text)).length;
    }
  }

  function shrink(event) {
    // An event over the collector's limit: cut long texts in its properties/traits, else drop it.
    var json = JSON.stringify(event);
    if (bytes(json) <= MAX_EVENT_BYTES) return json;
    ['properties', 'traits'].forEach(function (field) {
      var values = event[field];
      if (!values) return;
      Object.keys(values).forEach(function (key) {
        if (typeof values[key] === 'string' && values[key].length > 1000) values[key] = values[key].slice(0, 1000);
      });
    });
    if (event.context && event.context.page) {
      ['url', 'referrer', 'search'].forEach(function (key) {
        var text = event.context.page[key];
        if (typeof text === 'string' && text.length > 2000) event.context.page[key] = text.slice(0, 2000);
      });
    }
    json = JSON.stringify(event);
    if (bytes(json) <= MAX_EVENT_BYTES) return json;
    warn('event dropped: larger than ' + MAX_EVENT_BYTES + ' bytes', event.event || event.type);
    return null;
  }

  function enqueue(event) {
    var json;
    try {
      json = shrink(event);
    } catch (e) {
      warn('event dropped: not serialisable', e);
      return;
    }
    if (json === null) return;
    queue.push(json);
    if (queue.length >= MAX_QUEUE) flush();
    else if (!timer) timer = setTimeout(flush, FLUSH_DELAY_MS);
  }

  function body(items) {
    return '{"writeKey":' + JSON.stringify(config.siteKey || '') + ',"sentAt":' +
      JSON.stringify(new Date().toISOString()) + ',"batch":[' + items.join(',') + ']}';
  }

  function chunks(items, limit, measure) {
    // Splits serialised events into groups whose request stays under limit (one event always fits alone).
    var groups = [];
    var current = [];
    for (var i = 0; i < items.length; i++) {
      var candidate = current.concat([items[i]]);
      if (current.length && measure(candidate) > limit) {
        groups.push(current);
        current = [items[i]];
      } else {
        current = candidate;
      }
    }
    if (current.length) groups.push(current);
    return groups;
  }

  function base64url(text) {
    var binary;
    try {
      var data = new TextEncoder().encode(text);
      var parts = [];
      for (var i = 0; i < data.length; i += 0x8000) {
        parts.push(String.fromCharCode.apply(null, data.subarray(i, i + 0x8000)));
      }
      binary = parts.join('');
    } catch (e) {
      binary = unescape(encodeURIComponent(text));
    }
    return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function pixelUrl(items) {
    return config.endpoint + '/v1/pixel/batch?data=' + base64url(body(items));
  }

  function sendPixel(items) {
    var groups = chunks(items, MAX_PIXEL_URL, function (group) { return pixelUrl(group).length; });
    var waits = groups.map(function (group) {
      return new Promise(function (resolve) {
        try {
          var image = new Image(1, 1);
          var done = function () {
            image.onload = image.onerror = null;
            resolve();
          };
          image.onload = image.onerror = done;
          setTimeout(done, 10000);
          image.src = pixelUrl(group);
        } catch (e) {
          resolve();
        }
      });
    });
    return Promise.all(waits);
  }

  function canBeacon() {
    return typeof navigator.sendBeacon === 'function';
  }

  function canFetch() {
    return typeof window.fetch === 'function';
  }

  function sendBeacon(items) {
    try {
      return navigator.sendBeacon(config.endpoint + '/v1/batch', new Blob([body(items)], { type: 'text/plain' }));
    } catch (e) {
      return false;
    }
  }

  function sendFetch(items, attempt) {
    // fetch lets the tracker see the answer: 5xx and 429 are retried with backoff, other 4xx are not.
    var request;
    try {
      request = window.fetch(config.endpoint + '/v1/batch', {
        method: 'POST',
        keepalive: true,
        credentials: 'omit',
        mode: 'cors',
        headers: { 'Content-Type': 'text/plain' },
        body: body(items)
      });
    } catch (e) {
      return fallback(items);
    }
    return request.then(function (response) {
      if ((response.status >= 500 || response.status === 429) && attempt < RETRIES) {
        retrying.push(items);
        return new Promise(function (resolve) {
          setTimeout(function () {
            var waiting = retrying.indexOf(items);
            if (waiting < 0) return resolve(); // already sent as the page left
            retrying.splice(waiting, 1);
            resolve(sendFetch(items, attempt + 1));
          }, 500 * Math.pow(2, attempt));
        });
      }
      if (response.status >= 400) warn('collector answered ' + response.status);
      return undefined;
    }, function () {
      return fallback(items); // blocked or over the keep-alive budget: the pixel may still get through
    });
  }

  function fallback(items) {
    if (canBeacon() && sendBeacon(items)) return Promise.resolve();
    return sendPixel(items);
  }

  function send(items, leaving) {
    if (!config.endpoint || !items.length) return Promise.resolve();
    var groups = chunks(items, MAX_POST_BYTES, function (group) { return bytes(body(group)); });
    return Promise.all(groups.map(function (group) {
      // While the page lives, fetch (it can retry); when it is going away, the beacon is the surest.
      if (leaving) {
        if (canBeacon() && sendBeacon(group)) return Promise.resolve();
        if (canFetch()) return sendFetch(group, RETRIES);
        return sendPixel(group);
      }
      if (canFetch()) return sendFetch(group, 0);
      return fallback(group);
    }));
  }

  function flush(leaving) {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    var items = queue;
    queue = [];
    var sending = send(items, leaving === true).catch(function (e) { warn('send failed', e); });
    inFlight.push(sending);
    sending.then(function () { inFlight.splice(inFlight.indexOf(sending), 1); });
    return sending;
  }

  // ---- the calls ------------------------------------------------------------------------------
  function base(type, page) {
    var event = {
      type: type,
      messageId: uuid4(),
      anonymousId: state.anonymousId,
      context: context(page),
      originalTimestamp: new Date().toISOString()
    };
    if (state.userId) event.userId = state.userId;
    return event;
  }

  function page(name, properties) {
    if (name && typeof name === 'object') {
      properties = name;
      name = null;
    }
    var url = currentUrl();
    if (lastPageUrl !== null && url !== lastPageUrl) spaReferrer = lastPageUrl;
    lastPageUrl = url;
    var info = pageInfo();
    var event = base('page', info);
    if (typeof name === 'string' && name) event.name = name;
    var props = copy(properties);
    Object.keys(info).forEach(function (key) {
      if (props[key] === undefined) props[key] = info[key];
    });
    event.properties = props;
    enqueue(event);
  }

  function track(name, properties) {
    if (typeof name !== 'string' || !name.trim()) {
      warn('track needs an event name');
      return;
    }
    var event = base('track');
    event.event = name.trim();
    event.properties = copy(properties);
    enqueue(event);
  }

  function identify(userId, traits) {
    if (userId && typeof userId === 'object') {
      traits = userId;
      userId = null;
    }
    var id = cleanId(userId);
    if (userId !== null && userId !== undefined && !id) warn('identify: ignored a junk user id', userId);
    if (id && id !== state.userId) {
      state.userId = id;
      persist(UID_KEY, id);
    }
    var event = base('identify');
    event.traits = copy(traits);
    enqueue(event);
  }

  function alias(newId) {
    var id = cleanId(newId);
    if (!id) {
      warn('alias needs a user id', newId);
      return;
    }
    var event = base('alias');
    event.previousId = state.userId || state.anonymousId;
    event.userId = id;
    state.userId = id;
    persist(UID_KEY, id);
    enqueue(event);
  }

  function productProps(product) {
    var props = copy(product);
    if (props.product_id === undefined) {
      var id = props.productId !== undefined ? props.productId : (props.id !== undefined ? props.id : props.sku);
      if (id !== undefined) props.product_id = id;
    }
    return props;
  }

  function order(details) {
    var props = copy(details);
    if (Array.isArray(props.products)) props.products = props.products.map(productProps);
    track('Order Completed', props);
  }

  var IDENTITY_KEYS = ['userId', 'user_id', 'email', 'phone', 'name', 'firstName', 'lastName', 'first_name',
    'last_name', 'gender', 'birthYear', 'birth_year', 'birthday', 'address', 'crmId', 'crm_id', 'mobile'];

  function signup(traits) {
    var all = copy(traits);
    var userId = all.userId !== undefined ? all.userId : all.user_id;
    var person = copy(all);
    delete person.userId;
    delete person.user_id;
    // Who signed up goes to identify (with the user id when there is one); the conversion carries the rest.
    if (cleanId(userId) || Object.keys(person).length) identify(cleanId(userId), person);
    var props = {};
    Object.keys(all).forEach(function (key) {
      if (IDENTITY_KEYS.indexOf(key) < 0) props[key] = all[key];
    });
    track('Signed Up', props);
  }

  function reset() {
    state.userId = null;
    persist(UID_KEY, null);
    state.anonymousId = uuid4();
    persist(AID_KEY, state.anonymousId);
  }

  // Every public call is guarded: the host page never sees an exception from the tracker.
  function safe(fn) {
    return function () {
      try {
        return fn.apply(null, arguments);
      } catch (e) {
        warn('call failed', e);
        return undefined;
      }
    };
  }

  var api = {
    __cdpTracker: true,
    VERSION: VERSION,
    page: safe(page),
    track: safe(track),
    identify: safe(identify),
    alias: safe(alias),
    order: safe(order),
    signup: safe(signup),
    productView: safe(function (product) { track('Product Viewed', productProps(product)); }),
    search: safe(function (keyword, properties) {
      var props = copy(properties);
      props.query = keyword === undefined || keyword === null ? '' : String(keyword);
      track('Products Searched', props);
    }),
    addToCart: safe(function (product) { track('Product Added', productProps(product)); }),
    reset: safe(reset),
    init: safe(function (siteKey, options) {
      if (typeof siteKey === 'string' && siteKey) config.siteKey = siteKey;
      var opts = object(options);
      if (typeof opts.endpoint === 'string' && opts.endpoint) config.endpoint = opts.endpoint.replace(/\/+$/, '');
    }),
    // Sends what is queued now; the promise settles when the requests have gone (never rejects).
    flush: function () {
      try {
        flush(false);
        return Promise.all(inFlight.slice()).then(function () { return undefined; });
      } catch (e) {
        return Promise.resolve();
      }
    },
    anonymousId: function () { return state.anonymousId; },
    userId: function () { return state.userId; },
    // The queue form keeps working after load: cdp.push(['track', 'X', {...}]).
    push: function (call) {
      try {
        if (!call || typeof call.length !== 'number') return 0;
        var method = api[call[0]];
        if (typeof method !== 'function' || call[0] === 'push') {
          warn('unknown call', call[0]);
          return 0;
        }
        method.apply(null, Array.prototype.slice.call(call, 1));
      } catch (e) {
        warn('queued call failed', e);
      }
      return 0;
    }
  };

  // ---- start ----------------------------------------------------------------------------------
  function ownScript() {
    var current = document.currentScript;
    if (current && current.getAttribute && current.getAttribute('data-site-key')) return current;
    var keyed = document.querySelector('script[data-site-key]');
    if (keyed) return keyed;
    if (current) return current;
    var scripts = document.getElementsByTagName('script');
    for (var i = scripts.length - 1; i >= 0; i--) {
      if (/\/tracker\.js(\?|#|$)/.test(scripts[i].src || '')) return scripts[i];
    }
    return null;
  }

  function start() {
    var script = ownScript();
    var attr = function (name) {
      var value = script && script.getAttribute(name);
      return value && value.trim() ? value.trim() : null;
    };
    config.siteKey = attr('data-site-key') || attr('data-write-key');
    config.cookieDomain = attr('data-cookie-domain');
    var endpoint = attr('data-endpoint');
    if (!endpoint && script && script.src) {
      try {
        // The folder the script is served from: the origin, or a function's URL with its path prefix.
        var src = new URL(script.src, window.location.href);
        endpoint = src.origin + src.pathname.replace(/\/[^\/]*$/, '');
      } catch (e) { /* no URL */ }
    }
    config.endpoint = endpoint ? endpoint.replace(/\/+$/, '') : null;
    loadIds();

    var queued = Array.isArray(existing) ? existing.slice() : [];
    window.cdp = api;
    // init calls first (they may name the site key), then a page view unless one is queued or turned off.
    queued.filter(function (call) { return call && call[0] === 'init'; }).forEach(api.push);
    var pageQueued = queued.some(function (call) { return call && call[0] === 'page'; });
    if (!pageQueued && attr('data-auto-page') !== 'false') api.page();
    queued.filter(function (call) { return !call || call[0] !== 'init'; }).forEach(api.push);
    if (!config.siteKey) warn('no site key: add data-site-key to the script tag');

    var leave = function () {
      try {
        var pending = retrying;
        retrying = [];
        pending.forEach(function (items) { queue = items.concat(queue); });
        if (queue.length) flush(true);
      } catch (e) { /* nothing */ }
    };
    window.addEventListener('pagehide', leave);
    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'hidden') leave();
    });
  }

  try {
    start();
  } catch (e) {
    warn('tracker failed to start', e);
  }
})(window, document);
