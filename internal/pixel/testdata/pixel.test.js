// Unit tests of pixel.js in Node, with node:test and a small fake browser: a
// cookie jar that takes and refuses domains as browsers do, localStorage,
// fetch, sendBeacon, forms and script elements. Run by TestPixelJSUnit, or
// directly: node --test internal/pixel/testdata/
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const SOURCE = fs.readFileSync(path.join(__dirname, '..', 'pixel.js'), 'utf8');
const SNIPPET = process.env.PRUUV_SNIPPET || ''; // pixel.Snippet("https://pruuv.example", "pk_snippet")

// Domains a browser refuses as cookie domains (a slice of the public suffix list).
const PUBLIC_SUFFIXES = new Set(['com', 'uk', 'co.uk', 'io', 'github.io', 'net']);
const isIP = (h) => /^[\d.]+$/.test(h) || h.startsWith('[');

// Jar holds cookies for every host of a test, as one browser profile does.
class Jar {
	constructor() {
		this.cookies = [];
		this.disabled = false;
	}
	read(host) {
		if (this.disabled) return '';
		return this.cookies
			.filter((c) => (c.hostOnly ? c.domain === host : host === c.domain || host.endsWith('.' + c.domain)))
			.map((c) => c.name + '=' + c.value)
			.join('; ');
	}
	write(host, https, str) {
		if (this.disabled) return;
		const [pair, ...attrs] = str.split(';').map((s) => s.trim());
		const eq = pair.indexOf('=');
		const name = pair.slice(0, eq), value = pair.slice(eq + 1);
		const c = { name, value, hostOnly: true, domain: host, maxAge: null, sameSite: null, secure: false };
		for (const a of attrs) {
			const [k, v = ''] = a.split('=');
			switch (k.toLowerCase()) {
				case 'domain': c.domain = v.replace(/^\./, '').toLowerCase(); c.hostOnly = false; break;
				case 'max-age': c.maxAge = Number(v); break;
				case 'samesite': c.sameSite = v.toLowerCase(); break;
				case 'secure': c.secure = true; break;
			}
		}
		if (c.secure && !https) return;
		if (name.length + value.length > 4096) return;
		if (!c.hostOnly) {
			if (c.domain === host && (isIP(host) || PUBLIC_SUFFIXES.has(host))) c.hostOnly = true;
			else if (isIP(host) || PUBLIC_SUFFIXES.has(c.domain) || !(host === c.domain || host.endsWith('.' + c.domain))) return;
		}
		this.cookies = this.cookies.filter((o) => !(o.name === name && o.domain === c.domain && o.hostOnly === c.hostOnly));
		if (c.maxAge === null || c.maxAge > 0) this.cookies.push(c);
	}
	get(name) {
		return this.cookies.find((c) => c.name === name);
	}
}

class Storage {
	constructor() {
		this.items = new Map();
	}
	getItem(k) {
		return this.items.has(k) ? this.items.get(k) : null;
	}
	setItem(k, v) {
		this.items.set(k, String(v));
	}
}

function input(name, value = '', inForm = true) {
	return { name, value, inForm, type: 'hidden' };
}

function response(status, body) {
	return {
		ok: status >= 200 && status < 300,
		status,
		json: () => (typeof body === 'string' ? Promise.reject(new SyntaxError('not JSON')) : Promise.resolve(body)),
	};
}

// page makes a fake window at url and runs pixel.js in it (unless run is
// false). Options: jar and storage (shared between pages of one "browser"),
// inputs, the script element (src, key), extra window properties.
function page(url, opts = {}) {
	const u = new URL(url);
	const jar = opts.jar || new Jar();
	const storage = opts.storage || new Storage();
	const fetches = [], beacons = [], listeners = {}, appended = [];
	const script = opts.script === null ? null : el(opts.script || { src: 'https://pruuv.example/pixel.js', key: 'pk_test' });
	function el({ src, key }) {
		return { src, getAttribute: (n) => (n === 'data-site-key' && key !== undefined ? key : null) };
	}
	const document = {
		get cookie() {
			return jar.read(u.hostname);
		},
		set cookie(v) {
			jar.write(u.hostname, u.protocol === 'https:', v);
		},
		currentScript: script,
		readyState: opts.readyState || 'loading',
		getElementsByTagName: (t) => (t === 'script' ? (opts.scripts || []).map(el) : []),
		querySelectorAll: (sel) => {
			assert.equal(sel, 'form input');
			return (opts.inputs || []).filter((i) => i.inForm);
		},
		addEventListener: (type, fn) => (listeners[type] = listeners[type] || []).push(fn),
		createElement: (tag) => ({ tag }),
		head: { appendChild: (e) => appended.push(e) },
	};
	const win = {
		document,
		location: { href: u.href, hostname: u.hostname, search: u.search, protocol: u.protocol },
		localStorage: storage,
		navigator: {
			sendBeacon: (url, blob) => {
				beacons.push({ url, blob });
				return opts.beaconResult !== undefined ? opts.beaconResult : true;
			},
		},
		fetch: (url, init) => {
			fetches.push({ url, init, body: JSON.parse(init.body) });
			return opts.answer ? opts.answer(url, init) : Promise.resolve(response(200, { received: true, event_id: 'ev' + fetches.length }));
		},
		addEventListener: (type, fn) => (listeners[type] = listeners[type] || []).push(fn),
		__pruuvTest: {},
	};
	// Copied with their getters, which may throw, as a browser's can.
	Object.defineProperties(win, Object.getOwnPropertyDescriptors(opts.window || {}));
	const p = {
		win, jar, storage, fetches, beacons, listeners, appended, document,
		run: () => new Function('window', SOURCE)(win),
		fire: (type) => (listeners[type] || []).forEach((fn) => fn({ type })),
		get i() {
			return win.__pruuvTest.i;
		},
	};
	if (opts.run !== false) p.run();
	return p;
}

// A browser: pages that share cookies and localStorage.
function browser() {
	const jar = new Jar(), storage = new Storage();
	return { jar, storage, open: (url, opts = {}) => page(url, { jar, storage, ...opts }) };
}

function stored(p) {
	const c = p.jar.get('_pruuv');
	return c ? JSON.parse(decodeURIComponent(c.value)) : undefined;
}

const FB = /^fb\.(\d)\.(\d{13})\.(.+)$/;

test('cookie domain: the highest one the browser takes, and its subdomain index', () => {
	const p = page('https://www.example.com/', { run: false });
	p.run();
	for (const [host, want] of [
		['www.example.com', ['example.com', 1]],
		['example.com', ['example.com', 1]],
		['a.b.shop.example.com', ['example.com', 1]],
		['a.b.example.co.uk', ['example.co.uk', 2]],
		['foo.github.io', ['foo.github.io', 2]],
	]) {
		const q = page('https://' + host + '/');
		assert.deepEqual(q.i.domain(host), want, host);
		assert.equal(q.jar.cookies.filter((c) => c.name === '_pruuv_t').length, 0, 'probe cookie removed on ' + host);
		assert.equal(q.jar.get('_fbp').domain, want[0], '_fbp set on the chosen domain for ' + host);
		assert.equal(q.jar.get('_fbp').hostOnly, false);
	}
	for (const host of ['localhost', '127.0.0.1', '[::1]']) {
		const q = page('http://' + host + ':8080/');
		assert.deepEqual(q.i.domain(host), ['', 0], host);
		assert.equal(q.jar.get('_fbp').hostOnly, true, 'host-only cookie on ' + host);
		assert.match(q.jar.get('_fbp').value, /^fb\.0\./);
	}
	const off = page('https://www.example.com/', { run: false });
	off.jar.disabled = true;
	off.run();
	assert.deepEqual(off.i.domain('www.example.com'), ['', 0], 'cookies disabled');
});

test('cookie attributes: 90 days, path /, SameSite=Lax, Secure on https only', () => {
	const s = page('https://www.example.com/?gclid=G1&fbclid=F1');
	for (const name of ['_pruuv', '_fbc', '_fbp']) {
		const c = s.jar.get(name);
		assert.ok(c, name);
		assert.equal(c.maxAge, 7776000, name);
		assert.equal(c.sameSite, 'lax', name);
		assert.equal(c.secure, true, name);
	}
	const h = page('http://www.example.com/?gclid=G1');
	assert.equal(h.jar.get('_pruuv').secure, false, 'no Secure on http (browsers refuse it there)');
});

test('_fbc and _fbp formats', () => {
	const before = Date.now();
	const p = page('https://www.example.com/?fbclid=IwAR0-abc_DEF');
	const after = Date.now();
	const fbc = p.jar.get('_fbc').value.match(FB);
	assert.ok(fbc, p.jar.get('_fbc').value);
	assert.equal(fbc[1], '1');
	assert.ok(+fbc[2] >= before && +fbc[2] <= after, 'creation time in ms');
	assert.equal(fbc[3], 'IwAR0-abc_DEF', 'fbclid kept as is, case included');
	const fbp = p.jar.get('_fbp').value;
	assert.match(fbp, /^fb\.1\.\d{13}\.\d{10}$/);
	assert.ok(+fbp.split('.')[2] >= before && +fbp.split('.')[2] <= after);
	assert.equal(page('https://a.b.example.co.uk/?fbclid=X').jar.get('_fbc').value.split('.')[1], '2');
	// Two browsers get different random parts.
	assert.notEqual(page('https://example.com/').jar.get('_fbp').value.split('.')[3], page('https://example.com/').jar.get('_fbp').value.split('.')[3]);
});

test('_fbp: created once, then reused (and its expiry renewed)', () => {
	const b = browser();
	const first = b.open('https://www.example.com/').jar.get('_fbp').value;
	b.jar.get('_fbp').maxAge = 5;
	b.open('https://www.example.com/other');
	assert.equal(b.jar.get('_fbp').value, first);
	assert.equal(b.jar.get('_fbp').maxAge, 7776000);
	// One set by Meta's own pixel is reused as it is.
	const m = browser();
	m.jar.write('www.example.com', true, '_fbp=fb.1.1596403881668.1116446470; domain=example.com; path=/');
	m.open('https://www.example.com/');
	assert.equal(m.jar.get('_fbp').value, 'fb.1.1596403881668.1116446470');
});

test('_fbc: kept when it already holds this fbclid, replaced for another', () => {
	const fbc = page('https://example.com/').i.fbc;
	const t = 1700000000000;
	assert.equal(fbc(undefined, 'F1', 1, t), 'fb.1.1700000000000.F1');
	assert.equal(fbc('', 'F1', 2, t), 'fb.2.1700000000000.F1');
	assert.equal(fbc('fb.1.1554763741205.F1', 'F1', 1, t), 'fb.1.1554763741205.F1');
	assert.equal(fbc('fb.1.1554763741205.F1.AQ', 'F1', 1, t), 'fb.1.1554763741205.F1.AQ', 'Meta appendix segment');
	assert.equal(fbc('fb.1.1554763741205.a.b', 'a.b', 1, t), 'fb.1.1554763741205.a.b', 'fbclid with a dot');
	assert.equal(fbc('fb.1.1554763741205.F0', 'F1', 1, t), 'fb.1.1700000000000.F1');
	assert.equal(fbc('fb.1.1554763741205.XF1', 'F1', 1, t), 'fb.1.1700000000000.F1', 'a suffix is not the same fbclid');

	const b = browser();
	b.jar.write('www.example.com', true, '_fbc=fb.1.1554763741205.F1; domain=example.com; path=/');
	b.open('https://www.example.com/?fbclid=F1');
	assert.equal(b.jar.get('_fbc').value, 'fb.1.1554763741205.F1');
	b.open('https://www.example.com/?fbclid=F2');
	assert.match(b.jar.get('_fbc').value, /^fb\.1\.\d{13}\.F2$/);
	assert.notEqual(b.jar.get('_fbc').value.split('.')[2], '1554763741205');
	b.open('https://www.example.com/');
	assert.match(b.jar.get('_fbc').value, /\.F2$/, 'a visit without fbclid keeps it');
});

test('capture: a click replaces the whole set, UTMs alone replace only a set without a click', () => {
	const { capture } = page('https://example.com/').i;
	const q = (s) => new URLSearchParams(s);
	const t = Date.UTC(2026, 10, 1, 12, 30, 0, 250);
	assert.deepEqual(capture(q('?gclid=G1&utm_source=google&utm_medium=cpc&other=x'), {}, t), {
		gclid: 'G1', utm_source: 'google', utm_medium: 'cpc', click_timestamp: '2026-11-01T12:30:00.250Z',
	});
	for (const id of ['gclid', 'gbraid', 'wbraid', 'ttclid', 'msclkid']) {
		assert.deepEqual(capture(q('?' + id + '=V'), { gclid: 'OLD', utm_source: 'old' }, t), { [id]: 'V', click_timestamp: '2026-11-01T12:30:00.250Z' }, id);
	}
	assert.deepEqual(capture(q('?fbclid=F&utm_source=fb'), { gclid: 'OLD', click_timestamp: 'x' }, t), { utm_source: 'fb', click_timestamp: '2026-11-01T12:30:00.250Z' }, 'fbclid is a click');
	assert.equal(capture(q(''), { gclid: 'G' }, t), 0);
	assert.equal(capture(q('?foo=bar&gclid='), { gclid: 'G' }, t), 0, 'empty values are absent');
	assert.equal(capture(q('?utm_source=news'), { gclid: 'G', click_timestamp: 'x' }, t), 0, 'UTMs keep a stored click');
	assert.deepEqual(capture(q('?utm_source=news'), {}, t), { utm_source: 'news' });
	assert.deepEqual(capture(q('?utm_source=news&utm_term=a+b%20c'), { utm_source: 'old', utm_campaign: 'c' }, t), { utm_source: 'news', utm_term: 'a b c' }, 'UTMs replace UTMs as a group');
	assert.deepEqual(capture(q('?gclid=first&gclid=second'), {}, t).gclid, 'first');
});

test('good: values the API will take', () => {
	const { good } = page('https://example.com/').i;
	assert.ok(good('x'));
	assert.ok(good('a'.repeat(490)));
	assert.ok(!good('a'.repeat(491)));
	assert.ok(!good(''));
	assert.ok(!good(null));
	assert.ok(!good('a\u0000b'));
	assert.ok(!good('a\nb'));
	assert.ok(!good('a\u0085b'));
	assert.ok(good('é🙂'));
	// Rejected values are not captured.
	assert.equal(page('https://example.com/?gclid=' + 'g'.repeat(491)).jar.get('_pruuv'), undefined);
	assert.equal(page('https://example.com/?gclid=a%0Ab').jar.get('_pruuv'), undefined);
	assert.equal(page('https://example.com/?fbclid=' + 'f'.repeat(491)).jar.get('_fbc'), undefined);
});

test('storage across pages: kept, replaced by a new click, last click wins', () => {
	const b = browser();
	const before = Date.now();
	b.open('https://www.example.com/?gclid=G1&utm_source=google&utm_campaign=brand');
	const first = stored(b);
	assert.equal(first.gclid, 'G1');
	assert.ok(Date.parse(first.click_timestamp) >= before && Date.parse(first.click_timestamp) <= Date.now());
	assert.match(first.click_timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
	assert.equal(b.jar.get('_pruuv').domain, 'example.com', 'shared by subdomains');

	b.open('https://shop.example.com/cart');
	assert.deepEqual(stored(b), first, 'a visit without click ids keeps the set');
	b.open('https://www.example.com/?utm_source=newsletter');
	assert.deepEqual(stored(b), first, 'UTMs alone do not replace a click');
	assert.equal(b.open('https://shop.example.com/').win.Pruuv.values().gclid, 'G1');

	b.open('https://www.example.com/?ttclid=T2&utm_source=tiktok');
	const second = stored(b);
	assert.equal(second.ttclid, 'T2');
	assert.equal(second.gclid, undefined, 'the new click replaced gclid');
	assert.equal(second.utm_campaign, undefined, 'and the old UTMs');
	assert.equal(second.utm_source, 'tiktok');
});

test('localStorage keeps the set when cookies are gone, for 90 days', () => {
	const b = browser();
	b.open('https://www.example.com/?msclkid=M1');
	const ls = JSON.parse(b.storage.getItem('pruuv:_pruuv'));
	assert.equal(JSON.parse(ls[0]).msclkid, 'M1');
	const ttl = ls[1] - Date.now();
	assert.ok(ttl > 7776e6 - 60e3 && ttl <= 7776e6, 'expires 90 days on');
	b.jar.cookies = []; // cookies cleared, or purged by the browser
	assert.equal(b.open('https://www.example.com/').win.Pruuv.values().msclkid, 'M1');
	// Expired entries are ignored.
	b.jar.cookies = [];
	b.storage.setItem('pruuv:_pruuv', JSON.stringify([JSON.stringify({ gclid: 'OLD' }), Date.now() - 1]));
	assert.equal(b.open('https://www.example.com/').win.Pruuv.values().gclid, undefined);
});

test('a set too big for a cookie lives in localStorage and removes a stale cookie', () => {
	const b = browser();
	b.open('https://www.example.com/?gclid=OLD');
	assert.ok(b.jar.get('_pruuv'));
	const big = encodeURIComponent('%'.repeat(480)); // 1,440 bytes once encoded for the cookie
	b.open('https://www.example.com/?gclid=NEW&utm_source=' + big + '&utm_medium=' + big + '&utm_campaign=' + big);
	assert.equal(b.jar.get('_pruuv'), undefined, 'stale cookie removed');
	const v = b.open('https://www.example.com/').win.Pruuv.values();
	assert.equal(v.gclid, 'NEW');
	assert.equal(v.utm_source.length, 480);
});

test('track: posts text/plain JSON to the script origin, filling in captured values', async () => {
	const b = browser();
	b.open('https://www.example.com/?gclid=G1&fbclid=F1&utm_source=google&utm_medium=cpc');
	const p = b.open('https://www.example.com/thanks?x=1');
	const res = await p.win.Pruuv.track('stg_1', { reference: 'R1', utm_source: 'override', utm_medium: '', email: 'a@b.example', revenue_value: 12.5 });
	assert.deepEqual(res, { received: true, event_id: 'ev1', ok: true, status: 200 });
	assert.equal(p.fetches.length, 1);
	const f = p.fetches[0];
	assert.equal(f.url, 'https://pruuv.example/api/pixel/v1/track');
	assert.deepEqual(
		{ ...f.init, body: undefined },
		{ method: 'POST', body: undefined, headers: { 'Content-Type': 'text/plain;charset=UTF-8' }, keepalive: true, credentials: 'omit', mode: 'cors' },
	);
	const fbp = b.jar.get('_fbp').value, fbc = b.jar.get('_fbc').value;
	assert.deepEqual(f.body, {
		site_key: 'pk_test', stage_id: 'stg_1', reference: 'R1', email: 'a@b.example', revenue_value: 12.5,
		utm_source: 'override', utm_medium: 'cpc', gclid: 'G1', fbc, fbp,
		click_timestamp: stored(b).click_timestamp, event_source_url: 'https://www.example.com/thanks?x=1',
	});
	// Given values win; data cannot change the site key or stage.
	await p.win.Pruuv.track('stg_2', { reference: 'R2', fbc: 'fb.1.1.given', event_source_url: 'https://x.example/', site_key: 'pk_other', stage_id: 'nope' });
	assert.equal(p.fetches[1].body.fbc, 'fb.1.1.given');
	assert.equal(p.fetches[1].body.event_source_url, 'https://x.example/');
	assert.equal(p.fetches[1].body.site_key, 'pk_test');
	assert.equal(p.fetches[1].body.stage_id, 'stg_2');
	// No data at all.
	await p.win.Pruuv.track('stg_3');
	assert.equal(p.fetches[2].body.gclid, 'G1');
	assert.equal(p.fetches[2].body.reference, undefined);
});

test('track: answers and failures resolve, never reject', async () => {
	const cases = [
		[() => Promise.resolve(response(200, { received: true, duplicate: true })), { received: true, duplicate: true, ok: true, status: 200 }],
		[() => Promise.resolve(response(400, { error: 'Validation failed', details: { reference: ['is required'] } })), { error: 'Validation failed', details: { reference: ['is required'] }, ok: false, status: 400 }],
		[() => Promise.resolve(response(429, { error: 'Rate limit exceeded' })), { error: 'Rate limit exceeded', ok: false, status: 429 }],
		[() => Promise.resolve(response(502, '<html>')), { ok: false, status: 502, error: 'Bad response' }],
		[() => Promise.resolve(response(200, null)), { ok: true, status: 200 }],
		[() => Promise.reject(new TypeError('Failed to fetch')), { ok: false, status: 0, error: 'Network error' }],
	];
	for (const [answer, want] of cases) {
		const p = page('https://example.com/', { answer });
		assert.deepEqual(await p.win.Pruuv.track('s', { reference: 'r' }), want);
	}
	const bad = page('https://example.com/');
	const data = {};
	Object.defineProperty(data, 'reference', { enumerable: true, get: () => { throw new Error('host bug') } });
	const r = await bad.win.Pruuv.track('s', data);
	assert.equal(r.ok, false);
	assert.match(r.error, /host bug/);
});

test('track: falls back to sendBeacon when fetch is missing or throws', async () => {
	for (const fetch of [undefined, () => { throw new TypeError('keepalive unsupported') }]) {
		const p = page('https://example.com/?gclid=G9', { window: { fetch } });
		assert.deepEqual(await p.win.Pruuv.track('s', { reference: 'r' }), { ok: true, status: 0, beacon: true });
		assert.equal(p.beacons.length, 1);
		assert.equal(p.beacons[0].url, 'https://pruuv.example/api/pixel/v1/track');
		assert.equal(p.beacons[0].blob.type, 'text/plain;charset=utf-8');
		const body = JSON.parse(await p.beacons[0].blob.text());
		assert.equal(body.gclid, 'G9');
		assert.equal(body.reference, 'r');
	}
	const refused = page('https://example.com/', { window: { fetch: undefined }, beaconResult: false });
	assert.deepEqual(await refused.win.Pruuv.track('s', {}), { ok: false, status: 0, error: 'Not sent' });
	const none = page('https://example.com/', { window: { fetch: undefined, navigator: {} } });
	assert.deepEqual(await none.win.Pruuv.track('s', {}), { ok: false, status: 0, error: 'Not sent' });
});

test('configuration: currentScript, else the script tag ending in /pixel.js', async () => {
	const p = page('https://example.com/', { script: null, scripts: [{ src: 'https://cdn.example/other.js' }, { src: 'https://pruuv.example:8443/pixel.js?v=2', key: 'pk_found' }, { src: 'https://example.com/pixel.jsx' }] });
	await p.win.Pruuv.track('s', {});
	assert.equal(p.fetches[0].url, 'https://pruuv.example:8443/api/pixel/v1/track');
	assert.equal(p.fetches[0].body.site_key, 'pk_found');
	const none = page('https://example.com/', { script: null });
	await none.win.Pruuv.track('s', {});
	assert.equal(none.fetches[0].url, '/api/pixel/v1/track', 'no tag found: same origin');
});

test('hidden fields: empty inputs inside forms get the values, others are left alone', () => {
	const b = browser();
	b.open('https://www.example.com/?gclid=G1&fbclid=F1&utm_source=google');
	const inputs = {
		gclid: input('gclid'), utm_source: input('utm_source'), fbc: input('fbc'), fbp: input('fbp'), click_timestamp: input('click_timestamp'),
		typed: input('utm_medium'), filled: input('gclid', 'MINE'), outside: input('gclid', '', false),
		metaName: input('_fbc'), raw: input('fbclid'), other: input('email'),
	};
	// A set edited by hand carries a field the pixel never fills.
	const set = stored(b);
	set.email = 'tampered@example.com';
	b.jar.write('www.example.com', true, '_pruuv=' + encodeURIComponent(JSON.stringify(set)) + '; domain=example.com');
	const p = b.open('https://www.example.com/form', { inputs: Object.values(inputs) });
	assert.equal(inputs.gclid.value, 'G1');
	assert.equal(inputs.utm_source.value, 'google');
	assert.equal(inputs.fbc.value, b.jar.get('_fbc').value);
	assert.equal(inputs.fbp.value, b.jar.get('_fbp').value);
	assert.equal(inputs.click_timestamp.value, stored(b).click_timestamp);
	assert.equal(inputs.typed.value, '', 'nothing stored for utm_medium');
	assert.equal(inputs.filled.value, 'MINE');
	assert.equal(inputs.outside.value, '');
	assert.equal(inputs.metaName.value, '');
	assert.equal(inputs.raw.value, '');
	assert.equal(inputs.other.value, '');
	// Fields that appear later: on DOMContentLoaded, on load, and on Pruuv.fill().
	for (const when of ['DOMContentLoaded', 'load', 'fill']) {
		const late = input('gclid');
		p.document.querySelectorAll = () => [late];
		if (when === 'fill') assert.equal(p.win.Pruuv.fill(), 1);
		else p.fire(when);
		assert.equal(late.value, 'G1', when);
	}
	assert.deepEqual(Object.keys(p.listeners).sort(), ['DOMContentLoaded', 'load']);
});

test('never throws into the page: storage, cookies and the DOM may all fail', async () => {
	const hostile = {
		get localStorage() { throw new Error('SecurityError') },
		document: {
			get cookie() { throw new Error('SecurityError') },
			set cookie(v) { throw new Error('SecurityError') },
			currentScript: null,
			getElementsByTagName: () => { throw new Error('boom') },
			querySelectorAll: () => { throw new Error('boom') },
			addEventListener: () => {},
		},
	};
	const p = page('https://www.example.com/?gclid=G1', { run: false, window: hostile });
	assert.doesNotThrow(p.run);
	assert.equal(typeof p.win.Pruuv.track, 'function');
	assert.equal(p.win.Pruuv.fill(), 0);
	const r = await p.win.Pruuv.track('s', { reference: 'r' });
	assert.equal(r.ok, true);
	assert.equal(p.fetches[0].body.gclid, 'G1', 'values kept in memory for this page');
	assert.match(p.fetches[0].body.fbp, /^fb\.0\.\d{13}\.\d{10}$/);

	// A script element that fails when asked for its key.
	const odd = page('https://www.example.com/?gclid=G2', { run: false });
	odd.document.currentScript = { src: 'https://pruuv.example/pixel.js', getAttribute: () => { throw new Error('odd') } };
	assert.doesNotThrow(odd.run);
	await odd.win.Pruuv.track('s', {});
	assert.equal(odd.fetches[0].body.gclid, 'G2');

	// A window with nothing the script needs.
	const bare = { document: {}, location: { href: '', hostname: '', search: '', protocol: '' }, __pruuvTest: {} };
	assert.doesNotThrow(() => new Function('window', SOURCE)(bare));
	assert.deepEqual(await bare.Pruuv.track('s', {}), { ok: false, status: 0, error: 'Not sent' });
});

test('loaded twice: the first copy keeps serving', async () => {
	const p = page('https://example.com/?gclid=G1');
	const track = p.win.Pruuv.track;
	p.document.currentScript = { src: 'https://other.example/pixel.js', getAttribute: () => 'pk_second' };
	p.run();
	assert.equal(p.win.Pruuv.track, track);
	await p.win.Pruuv.track('s', {});
	assert.equal(p.fetches[0].body.site_key, 'pk_test');
});

test('queue: calls queued before the script ran are sent in order, each resolving its promise', async () => {
	const answers = [];
	const queued = ['A', 'B'].map((ref) => [
		'lead', { reference: ref }, (v) => answers.push(Promise.resolve(v).then((r) => [ref, r.event_id])),
	]);
	const p = page('https://example.com/?gclid=Q1', { script: null, window: { Pruuv: { k: 'pk_queue', q: queued } } });
	assert.deepEqual(p.fetches.map((f) => [f.body.reference, f.body.site_key, f.body.gclid]), [['A', 'pk_queue', 'Q1'], ['B', 'pk_queue', 'Q1']]);
	assert.deepEqual(await Promise.all(answers), [['A', 'ev1'], ['B', 'ev2']]);
	// A later push, as an old stub's track makes, is sent at once.
	p.win.Pruuv.q.push(['lead', { reference: 'C' }, () => {}]);
	assert.equal(p.fetches[2].body.reference, 'C');
	// A malformed entry is skipped without stopping the rest.
	const q = page('https://example.com/', { window: { Pruuv: { q: [null, ['lead', { reference: 'D' }]] } } });
	assert.deepEqual(q.fetches.map((f) => f.body.reference), ['D']);
	assert.equal(typeof q.win.Pruuv.track, 'function');
});

test('snippet: queues calls until pixel.js runs, which drains them in order', { skip: !SNIPPET && 'PRUUV_SNIPPET not set (run through go test)' }, async () => {
	const code = SNIPPET.replace(/^<script>|<\/script>$/g, '');
	const p = page('https://www.example.com/?wbraid=W1', { run: false, script: null });
	new Function('window', 'document', code)(p.win, p.document);
	assert.equal(p.appended.length, 1);
	const el = p.appended[0];
	assert.equal(el.src, 'https://pruuv.example/pixel.js');
	assert.equal(el.async, true);
	const stub = p.win.Pruuv.track;
	let settled = 0;
	const a = p.win.Pruuv.track('lead', { reference: 'A' }).then((r) => (settled++, r));
	const c = stub('lead', { reference: 'B' }).then((r) => (settled++, r));
	await new Promise((r) => setImmediate(r));
	assert.equal(settled, 0, 'pending until the script loads');
	assert.equal(p.fetches.length, 0);

	// The browser runs pixel.js as that element.
	p.document.currentScript = { src: el.src, getAttribute: () => null };
	p.run();
	assert.deepEqual(p.fetches.map((f) => f.body.reference), ['A', 'B']);
	assert.equal(p.fetches[0].body.site_key, 'pk_snippet', 'site key from the snippet');
	assert.equal(p.fetches[0].body.wbraid, 'W1', 'captured before the queue drains');
	assert.deepEqual(await a, { received: true, event_id: 'ev1', ok: true, status: 200 });
	assert.deepEqual(await c, { received: true, event_id: 'ev2', ok: true, status: 200 });
	// A reference to the stub taken before the load still works.
	assert.equal((await stub('lead', { reference: 'C' })).event_id, 'ev3');
	assert.notEqual(p.win.Pruuv.track, stub);
});

test('snippet: when pixel.js cannot load, queued and later calls resolve with a failure', { skip: !SNIPPET && 'PRUUV_SNIPPET not set (run through go test)' }, async () => {
	const code = SNIPPET.replace(/^<script>|<\/script>$/g, '');
	const p = page('https://www.example.com/', { run: false, script: null });
	new Function('window', 'document', code)(p.win, p.document);
	const queued = p.win.Pruuv.track('lead', { reference: 'A' });
	p.appended[0].onerror();
	const want = { ok: false, status: 0, error: 'Pixel not loaded' };
	assert.deepEqual(await queued, want);
	assert.deepEqual(await p.win.Pruuv.track('lead', { reference: 'B' }), want);
});
