/*! Pruuv pixel: see docs/pixel.md */
(function (w) {
	'use strict';
	var P = w.Pruuv || {}, d = w.document, L = w.location, T = w.__pruuvTest,
		CLICK = ['gclid', 'gbraid', 'wbraid', 'ttclid', 'msclkid'],
		UTM = ['utm_source', 'utm_medium', 'utm_campaign', 'utm_content', 'utm_term'],
		FILL = CLICK.concat(UTM, 'fbc', 'fbp', 'click_timestamp'),
		TYPE = 'text/plain;charset=UTF-8',
		mem = {}, dom = '', ls, url, key, q, i, s, t, c;

	if (P.v) return;

	function dec(s) {
		try { return decodeURIComponent(s) } catch (e) { return s }
	}

	// Non-empty, no control characters, fits the API's limits.
	function good(v) {
		return v && v.length <= 490 && !/[\0-\x1f\x7f-\x9f]/.test(v);
	}

	// Reads or writes document.cookie; never throws.
	function jar(v) {
		try { return v ? (d.cookie = v) : d.cookie } catch (e) { return '' }
	}

	function cookie(n) {
		var m = ('; ' + jar()).match('; ' + n + '=([^;]*)');
		return m ? dec(m[1]) : '';
	}

	// [highest domain that takes a cookie, its subdomain index]
	function domain(h) {
		var p = h.split('.'), i = p.length - 1, c = '_pruuv_t=' + Math.random(), dm;
		if (i && !/^[\d.]+$|:/.test(h)) {
			while (i--) {
				dm = '; path=/; domain=' + p.slice(i).join('.');
				jar(c + dm);
				if (jar().indexOf(c) >= 0) {
					jar(c + dm + '; max-age=0');
					return [p.slice(i).join('.'), p.length - 1 - i];
				}
			}
		}
		return ['', 0];
	}

	function get(n) {
		var v = cookie(n), x;
		if (v) return v;
		try {
			x = JSON.parse(ls.getItem('pruuv:' + n));
			if (x[1] > Date.now()) return x[0];
		} catch (e) {}
		return mem[n];
	}

	function put(n, v) {
		var e = encodeURIComponent(v), fits = e.length < 4e3;
		mem[n] = v;
		jar(n + '=' + (fits ? e : '') + '; path=/; max-age=' + (fits ? 7776e3 : 0) +
			(dom ? '; domain=' + dom : '') + '; samesite=lax' + (L.protocol == 'https:' ? '; secure' : ''));
		try { ls.setItem('pruuv:' + n, JSON.stringify([v, Date.now() + 7776e6])) } catch (e) {}
	}

	function fbc(old, id, ix, t) {
		return old && (old.split('.')[3] == id || old.slice(-id.length - 1) == '.' + id) ? old :
			'fb.' + ix + '.' + t + '.' + id;
	}

	function fbp(old, ix, t) {
		return old || 'fb.' + ix + '.' + t + '.' + Math.floor(1e9 + Math.random() * 9e9);
	}

	// The set to store, or 0 to keep old.
	function capture(q, old, t) {
		var s = {}, c = good(q.get('fbclid')), u;
		CLICK.forEach(function (k) { if (good(q.get(k))) c = s[k] = q.get(k) });
		UTM.forEach(function (k) { if (good(q.get(k))) u = s[k] = q.get(k) });
		if (c) s.click_timestamp = new Date(t).toISOString();
		return c || (u && !old.click_timestamp) ? s : 0;
	}

	function stored() {
		try { var s = JSON.parse(get('_pruuv')) } catch (e) {}
		return s && typeof s == 'object' ? s : {};
	}

	function values() {
		var s = stored();
		s.fbc = get('_fbc');
		s.fbp = get('_fbp');
		return s;
	}

	function fail(e, s) {
		return { ok: false, status: s || 0, error: e };
	}

	function send(b) {
		var s = JSON.stringify(b), n = w.navigator;
		try {
			return w.fetch(url, {
				method: 'POST', body: s, headers: { 'Content-Type': TYPE },
				keepalive: true, credentials: 'omit', mode: 'cors'
			}).then(function (r) {
				return r.json().then(function (j) {
					j = j && typeof j == 'object' ? j : {};
					j.ok = r.ok;
					j.status = r.status;
					return j;
				}, function () { return fail('Bad response', r.status) });
			}, function () { return fail('Network error') });
		} catch (e) {
			return Promise.resolve(n && n.sendBeacon && n.sendBeacon(url, new Blob([s], { type: TYPE })) ?
				{ ok: true, status: 0, beacon: true } : fail('Not sent'));
		}
	}

	function track(stage, data) {
		var b = {}, v, k;
		try {
			v = values();
			for (k in data) b[k] = data[k];
			FILL.forEach(function (k) { if (b[k] == null || b[k] === '') b[k] = v[k] });
			b.site_key = key;
			b.stage_id = stage;
			b.event_source_url = b.event_source_url || L.href;
			return send(b);
		} catch (e) {
			try { return Promise.resolve(fail(String(e))) } catch (e) {}
		}
	}

	function fill() {
		var v, e, n = 0, j, k;
		try {
			v = values();
			e = d.querySelectorAll('form input');
			for (j = 0; j < e.length; j++) {
				k = e[j].name;
				if (FILL.indexOf(k) >= 0 && v[k] && !e[j].value) {
					e[j].value = v[k];
					n++;
				}
			}
		} catch (x) {}
		return n;
	}

	try { ls = w.localStorage } catch (e) {}

	try {
		s = d.currentScript;
		if (!s) {
			q = d.getElementsByTagName('script');
			for (i = 0; i < q.length; i++) if (/\/pixel\.js(\?|$)/.test(q[i].src)) s = q[i];
		}
	} catch (e) {}
	try {
		url = (s && /^https?:\/\/[^/]+/.exec(s.src) || [''])[0] + '/api/pixel/v1/track';
		key = s && s.getAttribute('data-site-key') || P.k;
	} catch (e) {}

	try {
		c = domain(L.hostname);
		dom = c[0];
		q = new URLSearchParams(L.search);
		t = Date.now();
		s = capture(q, stored(), t);
		if (s) put('_pruuv', JSON.stringify(s));
		if (good(i = q.get('fbclid'))) put('_fbc', fbc(get('_fbc'), i, c[1], t));
		put('_fbp', fbp(get('_fbp'), c[1], t));
	} catch (e) {}

	try {
		q = P.q;
		P.v = 1;
		P.track = track;
		P.fill = fill;
		P.values = values;
		// The snippet's stub queued [stage, data, resolve].
		P.q = { push: function (c) { try { c[2](track(c[0], c[1])) } catch (e) {} } };
		for (i = 0; q && i < q.length; i++) P.q.push(q[i]);
		w.Pruuv = P;
		fill();
		d.addEventListener('DOMContentLoaded', fill);
		w.addEventListener('load', fill);
	} catch (e) {}

	if (T) T.i = { good: good, domain: domain, fbc: fbc, fbp: fbp, capture: capture };
})(window);
