// The mailreport dashboard: a single page over the JSON API (/api/v1/*), routed by the URL's
// hash:
//   #/overview?period=30&domain=   cards, server-rendered SVG charts, recent ARF reports,
//                                  outgoing reports
//   #/dmarc | #/tls | #/arf | #/dsn?domain=&reporter=&from=&to=&result=&offset=   lists
//   #/report/<id>                  one report, with the fields Stalwart's WebAdmin shows
// Every request carries "Authorization: Bearer <token>"; the token is asked for when the
// server answers 401 and is kept in sessionStorage (this tab only).
//
// Safety: data is inserted with textContent / text nodes only, never as HTML. The charts are
// SVG made by our own server (XML-escaped there); they are parsed with DOMParser and imported
// as nodes, and anything but SVG drawing elements is dropped. No inline script or style (the
// server's CSP allows 'self' only): looks come from app.css classes.
'use strict';

(() => {
  const TOKEN_KEY = 'mailreport.token';
  const PAGE = 50;
  const TYPES = {
    dmarc: { api: 'dmarc', kind: 'dmarc-aggregate', title: 'DMARC aggregate reports' },
    tls: { api: 'tls', kind: 'tls-aggregate', title: 'TLS reports (TLS-RPT)' },
    arf: { api: 'arf', kind: 'arf', title: 'Failure and abuse reports (ARF)' },
    dsn: { api: 'dsn', kind: 'dsn', title: 'Delivery status notifications (bounces)' },
  };
  const KIND_TO_SECTION = {
    'dmarc-aggregate': 'dmarc', 'tls-aggregate': 'tls', arf: 'arf', dsn: 'dsn',
  };
  const RESULTS = {
    dmarc: [['', 'any'], ['pass', 'all passed'], ['fail', 'some failed']],
    tls: [['', 'any'], ['pass', 'no failed session'], ['fail', 'some failed']],
    arf: [['', 'any'], ['auth-failure', 'auth-failure'], ['abuse', 'abuse'], ['fraud', 'fraud'],
      ['virus', 'virus'], ['not-spam', 'not-spam'], ['other', 'other']],
    dsn: [['', 'any'], ['failed', 'failed'], ['delayed', 'delayed'], ['delivered', 'delivered'],
      ['relayed', 'relayed'], ['expanded', 'expanded']],
  };
  const PERIODS = [['7', 'Last 7 days'], ['30', 'Last 30 days'], ['90', 'Last 90 days'],
    ['365', 'Last year'], ['all', 'All time']];

  const main = document.getElementById('main');
  const statusBox = document.getElementById('status');
  const login = document.getElementById('login');
  const loginForm = document.getElementById('login-form');
  const loginError = document.getElementById('login-error');
  const tokenInput = document.getElementById('token');
  const signout = document.getElementById('signout');

  // ------------------------------------------------------------------ helpers

  class AuthError extends Error {}

  // el('a', {href: '#/x', className: 'y'}, 'text', childNode, [more, children])
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'className') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      if (Array.isArray(c)) append(node, c);
      else if (c instanceof Node) node.appendChild(c);
      else node.appendChild(document.createTextNode(String(c)));
    }
  }

  // Appends nodes and strings; '' / null / false are left out.
  function put(parent, ...children) {
    append(parent, children);
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function pad(n) {
    return String(n).padStart(2, '0');
  }

  // Epoch seconds → "2026-01-02 03:04" (UTC); null/0 → "".
  function fmtTime(t) {
    if (t === null || t === undefined || t === '' || Number(t) === 0) return '';
    const d = new Date(Number(t) * 1000);
    if (Number.isNaN(d.getTime())) return String(t);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
        `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  }

  function fmtDay(t) {
    return fmtTime(t).slice(0, 10);
  }

  function fmtRange(begin, end) {
    const b = fmtTime(begin);
    const e = fmtTime(end);
    return e && e !== b ? `${b} – ${e}` : b;
  }

  function fmtNum(n) {
    if (n === null || n === undefined || n === '') return '';
    return Number(n).toLocaleString('en-US');
  }

  function pct(part, whole) {
    if (!whole) return '';
    return `${(100 * part / whole).toFixed(1)} %`;
  }

  function str(v) {
    if (v === null || v === undefined) return '';
    if (Array.isArray(v)) return v.join(', ');
    return String(v);
  }

  // YYYY-MM-DD (UTC) of now minus `days`.
  function daysAgo(days) {
    const d = new Date(Date.now() - days * 86400 * 1000);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== null && v !== '') q.set(k, v);
    }
    const s = q.toString();
    return s ? `?${s}` : '';
  }

  function setStatus(text, isError) {
    statusBox.textContent = text || '';
    statusBox.classList.toggle('error', Boolean(isError));
  }

  // ------------------------------------------------------------------ API

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  }

  async function request(path) {
    const headers = {};
    const t = token();
    if (t) headers.Authorization = `Bearer ${t}`;
    const resp = await fetch(path, { headers, cache: 'no-store' });
    if (resp.status === 401) {
      if (t) sessionStorage.removeItem(TOKEN_KEY);
      showLogin(t ? 'The server did not accept this token.' : '');
      throw new AuthError('token required');
    }
    if (!resp.ok) {
      let message = `${resp.status} ${resp.statusText}`;
      try {
        const body = await resp.json();
        if (body && body.error) message = `${resp.status}: ${body.error}`;
      } catch (e) { /* not JSON */ }
      throw new Error(`${path}: ${message}`);
    }
    return resp;
  }

  async function api(path) {
    return (await request(path)).json();
  }

  // ------------------------------------------------------------------ sign-in

  function showLogin(message) {
    login.hidden = false;
    main.hidden = true;
    signout.hidden = true;
    loginError.textContent = message || '';
    tokenInput.value = '';
    tokenInput.focus();
  }

  loginForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = tokenInput.value.trim();
    if (!t) return;
    sessionStorage.setItem(TOKEN_KEY, t);
    login.hidden = true;
    main.hidden = false;
    route();
  });

  signout.addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    clear(main);
    showLogin('');
  });

  // ------------------------------------------------------------------ building blocks

  // A table with a caption and column headers; rows are arrays of cells (strings or nodes).
  // `onRow(i)` (optional) makes rows clickable.
  function table(caption, headers, rows, opts = {}) {
    const thead = el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col' }, h))));
    const tbody = el('tbody');
    rows.forEach((cells, i) => {
      const tr = el('tr', {}, cells.map((c) => el('td', {}, c)));
      if (opts.href) {
        tr.classList.add('clickable');
        tr.addEventListener('click', (ev) => {
          if (ev.target.closest('a')) return;
          location.hash = opts.href(i);
        });
      }
      tbody.appendChild(tr);
    });
    if (!rows.length) {
      tbody.appendChild(el('tr', {}, el('td', { colspan: headers.length, className: 'empty' },
          opts.empty || 'Nothing here.')));
    }
    return el('div', { className: 'table-wrap' },
        el('table', { className: opts.className || '' },
            el('caption', {}, caption), thead, tbody));
  }

  // A description list of [label, value] pairs; empty values are shown as "—".
  function fields(pairs, className) {
    const dl = el('dl', { className: `fields ${className || ''}` });
    for (const [label, value] of pairs) {
      const v = value instanceof Node ? value : str(value);
      dl.appendChild(el('dt', {}, label));
      dl.appendChild(el('dd', { className: v === '' ? 'none' : '' }, v === '' ? '—' : v));
    }
    return dl;
  }

  function section(title, ...children) {
    return el('section', { className: 'card' }, el('h2', {}, title), children);
  }

  function list(items) {
    if (!items || !items.length) return '';
    return el('ul', { className: 'plain' }, items.map((i) => el('li', {}, str(i))));
  }

  function badge(text, kind) {
    if (!text) return '';
    return el('span', { className: `badge ${kind || badgeKind(text)}` }, text);
  }

  function badgeKind(text) {
    const t = String(text).toLowerCase();
    if (['pass', 'none', 'delivered', 'relayed', 'expanded'].includes(t)) return 'good';
    if (['fail', 'reject', 'failed', 'permerror', 'abuse', 'fraud', 'virus'].includes(t)) {
      return 'bad';
    }
    if (['quarantine', 'softfail', 'temperror', 'delayed', 'auth-failure', 'neutral']
        .includes(t)) return 'warn';
    return 'plain';
  }

  function headerTable(caption, pairs) {
    return table(caption, ['Field', 'Value'],
        (pairs || []).map(([name, value]) => [name, el('span', { className: 'pre' }, value)]),
        { empty: 'None.', className: 'headers' });
  }

  function errorsSection(errors, title) {
    if (!errors || !errors.length) return '';
    return section(title || 'Parser notes', list(errors));
  }

  // Fetches one of our SVG charts and puts it in `box`. Only SVG drawing elements survive the
  // import (the server makes nothing else), so a chart can never carry script.
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const SVG_ALLOWED = new Set(['svg', 'g', 'rect', 'line', 'text', 'title', 'path', 'tspan']);

  function sanitizeSvg(node) {
    for (const child of Array.from(node.children)) {
      if (child.namespaceURI !== SVG_NS || !SVG_ALLOWED.has(child.localName)) {
        child.remove();
        continue;
      }
      for (const attr of Array.from(child.attributes)) {
        const n = attr.name.toLowerCase();
        if (n.startsWith('on') || n === 'style' || n.includes('href')) {
          child.removeAttribute(attr.name);
        }
      }
      sanitizeSvg(child);
    }
  }

  async function loadChart(box, url) {
    box.classList.add('loading');
    try {
      const text = await (await request(url)).text();
      const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
      const root = doc.documentElement;
      if (root.namespaceURI !== SVG_NS || root.localName !== 'svg' ||
          doc.getElementsByTagName('parsererror').length) {
        throw new Error(`${url}: not an SVG image`);
      }
      sanitizeSvg(root);
      for (const attr of Array.from(root.attributes)) {
        if (attr.name.toLowerCase().startsWith('on') || attr.name === 'style') {
          root.removeAttribute(attr.name);
        }
      }
      root.removeAttribute('width');
      root.removeAttribute('height');
      clear(box);
      box.appendChild(document.importNode(root, true));
    } catch (e) {
      if (e instanceof AuthError) throw e;
      clear(box);
      box.appendChild(el('p', { className: 'error' }, e.message));
    } finally {
      box.classList.remove('loading');
    }
  }

  // ------------------------------------------------------------------ routing

  function parseHash() {
    const h = location.hash.replace(/^#\/?/, '');
    const [path, qs] = h.split('?');
    const parts = path.split('/').filter(Boolean);
    return { parts: parts.length ? parts : ['overview'], params: new URLSearchParams(qs || '') };
  }

  function highlightNav(section) {
    for (const a of document.querySelectorAll('nav a[data-section]')) {
      if (a.dataset.section === section) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }

  let generation = 0;  // a newer route makes older responses stale

  async function route() {
    if (!login.hidden) return;
    const my = ++generation;
    const { parts, params } = parseHash();
    // The view is shown once its data is in; data-route says which route it shows.
    const view = el('div', { className: 'view', 'data-route': location.hash });
    setStatus('Loading…');
    try {
      if (parts[0] === 'overview') {
        highlightNav('overview');
        await renderOverview(view, params, my);
      } else if (TYPES[parts[0]]) {
        highlightNav(parts[0]);
        await renderList(view, parts[0], params, my);
      } else if (parts[0] === 'report' && /^\d+$/.test(parts[1] || '')) {
        await renderReport(view, parts[1], my);
      } else {
        highlightNav('');
        put(view, el('h1', {}, 'Not found'));
        put(view, el('p', {}, el('a', { href: '#/overview' }, 'Back to the overview')));
      }
      if (my !== generation) return;
      signout.hidden = !token();
      setStatus('');
    } catch (e) {
      if (my !== generation) return;
      if (e instanceof AuthError) {
        setStatus('');
        return;
      }
      setStatus(e.message, true);
      put(view, el('p', { className: 'error' }, e.message));
    }
    if (my !== generation) return;
    clear(main);
    main.appendChild(view);
    document.title = `${(view.querySelector('h1') || {}).textContent || 'mailreport'} — mailreport`;
  }

  window.addEventListener('hashchange', () => {
    route().then(() => main.focus({ preventScroll: true }));
  });

  // ------------------------------------------------------------------ overview

  async function renderOverview(view, params, my) {
    const period = params.get('period') || '30';
    const domain = params.get('domain') || '';
    const from = period === 'all' ? '0' : daysAgo(Number(period) || 30);

    const select = el('select', { id: 'period', name: 'period' },
        PERIODS.map(([v, label]) => el('option', { value: v, selected: v === period }, label)));
    const domainInput = el('input', { id: 'ov-domain', name: 'domain', type: 'text',
      value: domain, placeholder: 'all domains', autocomplete: 'off' });
    const form = el('form', { className: 'filters', role: 'search' },
        el('div', {}, el('label', { for: 'period' }, 'Period'), select),
        el('div', {}, el('label', { for: 'ov-domain' }, 'Domain'), domainInput),
        el('div', { className: 'buttons' }, el('button', { type: 'submit' }, 'Apply')));
    const apply = (ev) => {
      if (ev) ev.preventDefault();
      location.hash = `#/overview${query({ period: select.value, domain: domainInput.value.trim() })}`;
    };
    form.addEventListener('submit', apply);
    select.addEventListener('change', apply);

    put(view, el('h1', {}, 'Overview'));
    put(view, form);

    const [summary, arf, outgoing] = await Promise.all([
      api('/api/v1/summary'),
      api(`/api/v1/reports${query({ type: 'arf', from, domain, limit: 10 })}`),
      api('/api/v1/outgoing?limit=10'),
    ]);
    if (my !== generation) return;

    put(view, summaryCards(summary));

    const chartQuery = query({ from, domain });
    const charts = [
      ['dmarc-daily', 'DMARC messages per day: pass and fail'],
      ['top-sources', 'Top failing source IPs'],
      ['tls-daily', 'TLS sessions per day: successful and failed'],
      ['tls-failures', 'TLS failures by result type'],
    ];
    const grid = el('div', { className: 'charts' });
    const loads = [];
    for (const [name, caption] of charts) {
      const box = el('div', { className: 'chart-box', 'data-chart': name });
      grid.appendChild(el('figure', { className: 'card chart', 'aria-label': caption }, box));
      loads.push(loadChart(box, `/api/v1/charts/${name}.svg${chartQuery}`));
    }
    put(view, el('h2', { className: 'section-title' }, 'Charts'));
    put(view, grid);

    put(view, section('Recent failure and abuse reports',
        reportTable('arf', arf.items || [], 'Recent ARF reports'),
        el('p', {}, el('a', { href: `#/arf${query({ from: period === 'all' ? '' : from, domain })}` },
            `All ${fmtNum(arf.total)} ARF reports in this period →`))));

    put(view, outgoingSection(outgoing, summary));
    await Promise.all(loads);
  }

  function card(label, value, detail, kind) {
    return el('div', { className: `stat ${kind || ''}` },
        el('div', { className: 'stat-value' }, value),
        el('div', { className: 'stat-label' }, label),
        detail ? el('div', { className: 'stat-detail' }, detail) : '');
  }

  function summaryCards(s) {
    const r = s.reports || {};
    const d = s.dmarc || {};
    const t = s.tls || {};
    const tlsTotal = (t.successful || 0) + (t.failed || 0);
    return el('section', { className: 'stats', 'aria-label': 'Totals of stored reports' },
        card('DMARC aggregate reports', fmtNum(r['dmarc-aggregate'] || 0),
            `${fmtNum(d.messages || 0)} messages`),
        card('DMARC pass', pct(d.pass || 0, d.messages) || '—',
            `${fmtNum(d.pass || 0)} passed, ${fmtNum(d.fail || 0)} failed`,
            d.fail ? 'bad' : 'good'),
        card('TLS reports', fmtNum(r['tls-aggregate'] || 0),
            `${fmtNum(t.successful || 0)} sessions ok, ${fmtNum(t.failed || 0)} failed`,
            t.failed ? 'warn' : ''),
        card('TLS success', pct(t.successful || 0, tlsTotal) || '—', 'of sessions reported'),
        card('Failure & abuse (ARF)', fmtNum(r.arf || 0), 'reports'),
        card('Bounces (DSN)', fmtNum(r.dsn || 0), 'reports'),
        card('Messages received', fmtNum(s.raw_messages || 0),
            `${fmtNum(s.unparsed || 0)} without a report (kept raw)`,
            s.unparsed ? 'warn' : ''));
  }

  function outgoingSection(out, summary) {
    const stats = (out.stats || summary.outbox || []).map((st) => [
      st.kind, badge(st.state, st.state === 'failed' ? 'bad' : st.state === 'sent' ? 'good' : 'warn'),
      fmtNum(st.count), st.state === 'queued' ? fmtTime(st.oldest_created_at) : '',
    ]);
    const items = (out.items || []).map((o) => [
      fmtTime(o.created_at), o.kind, o.recipient, o.reported_domain,
      badge(o.state, o.state === 'failed' ? 'bad' : o.state === 'sent' ? 'good' : 'warn'),
      fmtNum(o.attempts), o.state === 'queued' ? fmtTime(o.next_attempt_at) : fmtTime(o.finished_at),
      o.last_error,
    ]);
    const aggregates = (out.aggregate_reports || []).slice(0, 10).map((a) => [
      fmtTime(a.created_at), a.kind, a.policy_domain, a.report_id,
      fmtRange(a.date_begin, a.date_end), fmtNum(a.records), fmtNum(a.messages),
    ]);
    const hooks = (summary.webhooks || []).map((w) => [w.webhook, fmtNum(w.pending)]);
    return section('Outgoing reports',
        table('Outbox by kind and state',
            ['Kind', 'State', 'Count', 'Oldest queued'], stats,
            { empty: 'Nothing queued, sent or failed yet.' }),
        table('Latest outbox entries',
            ['Created', 'Kind', 'Recipient', 'About domain', 'State', 'Attempts',
              'Next try / finished', 'Last error'], items, { empty: 'No entries.' }),
        table('Latest aggregate reports built',
            ['Built', 'Kind', 'Domain', 'Report ID', 'Period', 'Records', 'Messages'],
            aggregates, { empty: 'No aggregate report built yet.' }),
        hooks.length ? table('Webhook events pending', ['Webhook', 'Pending'], hooks) : '');
  }

  // ------------------------------------------------------------------ lists

  function reportLink(item) {
    return el('a', { href: `#/report/${item.id}` }, reportLabel(item));
  }

  function reportLabel(item) {
    switch (item.type) {
      case 'dmarc-aggregate':
      case 'tls-aggregate':
        return item.report_id || `report ${item.id}`;
      case 'arf':
        return item.feedback_type || 'feedback report';
      default:
        return item.action || item.status || 'notification';
    }
  }

  // The table of a list view (also the overview's recent ARF reports).
  function reportTable(section, items, caption) {
    const href = (i) => `#/report/${items[i].id}`;
    let headers;
    let rows;
    if (section === 'dmarc') {
      headers = ['Report', 'Reporter', 'Domain', 'Period', 'Messages', 'Pass', 'Fail', 'Pass rate'];
      rows = items.map((it) => [reportLink(it), it.org_name, it.policy_domain,
        fmtRange(it.date_begin, it.date_end), fmtNum(it.messages), fmtNum(it.pass),
        it.fail ? badge(fmtNum(it.fail), 'bad') : '0', pct(it.pass, it.messages)]);
    } else if (section === 'tls') {
      headers = ['Report', 'Reporter', 'Domain', 'Period', 'Successful sessions',
        'Failed sessions'];
      rows = items.map((it) => [reportLink(it), it.org_name, it.policy_domain,
        fmtRange(it.date_begin, it.date_end), fmtNum(it.sessions_ok),
        it.sessions_failed ? badge(fmtNum(it.sessions_failed), 'bad') : '0']);
    } else if (section === 'arf') {
      headers = ['Feedback type', 'Arrival', 'Reporter', 'Reported domain', 'Source IP',
        'Received'];
      rows = items.map((it) => [
        el('a', { href: `#/report/${it.id}` }, badge(it.feedback_type || 'unknown')),
        fmtTime(it.date_begin), it.org_name, it.policy_domain, it.source_ip,
        fmtTime(it.received_at)]);
    } else {
      headers = ['Action', 'Status', 'Recipient', 'Reporter', 'Domain', 'Arrival', 'Received'];
      rows = items.map((it) => [
        el('a', { href: `#/report/${it.id}` }, badge(it.action || 'unknown')),
        it.status, it.recipient, it.org_name, it.policy_domain, fmtTime(it.date_begin),
        fmtTime(it.received_at)]);
    }
    return table(caption, headers, rows,
        { href, className: 'reports', empty: 'No report matches.' });
  }

  async function renderList(view, sectionName, params, my) {
    const type = TYPES[sectionName];
    const f = {
      domain: params.get('domain') || '',
      reporter: params.get('reporter') || '',
      from: params.get('from') || '',
      to: params.get('to') || '',
      result: params.get('result') || '',
    };
    const offset = Math.max(0, Number(params.get('offset')) || 0);

    const input = (name, label, kind) => el('div', {},
        el('label', { for: `f-${name}` }, label),
        el('input', { id: `f-${name}`, name, type: kind || 'text', value: f[name],
          autocomplete: 'off' }));
    const resultSelect = el('select', { id: 'f-result', name: 'result' },
        RESULTS[sectionName].map(([v, label]) =>
          el('option', { value: v, selected: v === f.result }, label)));
    const form = el('form', { className: 'filters', role: 'search' },
        input('domain', sectionName === 'arf' ? 'Reported domain' : 'Domain'),
        input('reporter', 'Reporter'),
        input('from', 'From (UTC)', 'date'),
        input('to', 'To (UTC, before)', 'date'),
        el('div', {}, el('label', { for: 'f-result' },
            sectionName === 'arf' ? 'Feedback type' : sectionName === 'dsn' ? 'Action' : 'Result'),
        resultSelect),
        el('div', { className: 'buttons' },
            el('button', { type: 'submit' }, 'Filter'),
            el('a', { href: `#/${sectionName}`, className: 'button quiet' }, 'Reset')));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const data = new FormData(form);
      const next = {};
      for (const k of Object.keys(f)) next[k] = String(data.get(k) || '').trim();
      location.hash = `#/${sectionName}${query(next)}`;
    });

    put(view, el('h1', {}, type.title));
    put(view, form);

    // The API's `from` defaults to 30 days back; an empty From field here means all time.
    const page = await api(`/api/v1/reports${query({
      type: type.api, ...f, from: f.from || '0', limit: PAGE, offset,
    })}`);
    if (my !== generation) return;
    const items = page.items || [];
    const total = page.total || 0;
    const first = items.length ? offset + 1 : 0;
    put(view, reportTable(sectionName, items,
        `${type.title}: ${fmtNum(first)}–${fmtNum(offset + items.length)} of ${fmtNum(total)}`));

    const go = (o) => `#/${sectionName}${query({ ...f, offset: o || '' })}`;
    const pager = el('nav', { className: 'pager', 'aria-label': 'Pages' },
        offset > 0 ? el('a', { href: go(Math.max(0, offset - PAGE)), className: 'button' },
            '← Newer') : el('span', { className: 'button disabled' }, '← Newer'),
        el('span', {}, `${fmtNum(first)}–${fmtNum(offset + items.length)} of ${fmtNum(total)}`),
        offset + items.length < total ? el('a', { href: go(offset + PAGE), className: 'button' },
            'Older →') : el('span', { className: 'button disabled' }, 'Older →'));
    put(view, pager);
  }

  // ------------------------------------------------------------------ report detail

  async function renderReport(view, id, my) {
    const data = await api(`/api/v1/reports/${encodeURIComponent(id)}`);
    if (my !== generation) return;
    const s = data.summary || {};
    const r = data.report || {};
    const sectionName = KIND_TO_SECTION[s.type] || 'overview';
    highlightNav(sectionName);

    put(view, el('p', { className: 'crumbs' },
        el('a', { href: `#/${sectionName}` }, `← ${(TYPES[sectionName] || { title: 'Overview' }).title}`)));

    if (s.type === 'dmarc-aggregate') renderDmarc(view, s, r);
    else if (s.type === 'tls-aggregate') renderTls(view, s, r);
    else if (s.type === 'arf') renderArf(view, s, r);
    else if (s.type === 'dsn') renderDsn(view, s, r);
    else put(view, el('h1', {}, `Report ${id}`));

    // The stored message, fetched with the token, shown as text on demand.
    const rawBox = el('div', { className: 'raw' });
    const rawButton = el('button', { type: 'button', className: 'quiet' }, 'Show the raw message');
    rawButton.addEventListener('click', async () => {
      rawButton.disabled = true;
      try {
        const text = await (await request(`/api/v1/reports/${encodeURIComponent(id)}/raw`)).text();
        clear(rawBox);
        rawBox.appendChild(el('pre', { className: 'pre' }, text));
        rawButton.hidden = true;
      } catch (e) {
        if (e instanceof AuthError) return;
        rawBox.appendChild(el('p', { className: 'error' }, e.message));
        rawButton.disabled = false;
      }
    });
    put(view, section('Raw message',
        fields([['Message id', s.message_id || ''], ['Received', fmtTime(s.received_at)]]),
        s.message_id ? rawButton : el('p', {}, 'The raw message was purged.'), rawBox));
  }

  function authResults(list, withSelector) {
    if (!list || !list.length) return '';
    return el('ul', { className: 'plain auth' }, list.map((a) => el('li', {},
        badge(a.result || 'none'), ' ', a.domain || '',
        withSelector && a.selector ? ` (s=${a.selector})` : '',
        !withSelector && a.scope ? ` (${a.scope})` : '',
        a.human_result ? ` — ${a.human_result}` : '')));
  }

  function renderDmarc(view, s, r) {
    const md = r.report_metadata || {};
    const pp = r.policy_published || {};
    const range = md.date_range || {};
    put(view, el('h1', {}, `DMARC report from ${md.org_name || s.org_name || 'unknown'}`));
    put(view, el('section', { className: 'stats' },
        card('Messages', fmtNum(s.messages)),
        card('Passed DMARC', fmtNum(s.pass), pct(s.pass, s.messages), 'good'),
        card('Failed DMARC', fmtNum(s.fail), pct(s.fail, s.messages), s.fail ? 'bad' : ''),
        card('Records', fmtNum((r.records || []).length))));
    put(view, section('Report',
        fields([
          ['Reporter', md.org_name],
          ['Contact e-mail', md.email],
          ['Extra contact', md.extra_contact_info],
          ['Report ID', md.report_id],
          ['Period (UTC)', fmtRange(range.begin, range.end)],
          ['Reporter errors', list(md.error)],
          ['Generator', md.generator],
          ['Version', r.version],
        ], 'report-meta')));
    put(view, section('Policy published',
        fields([
          ['Domain', pp.domain],
          ['DKIM alignment (adkim)', pp.adkim],
          ['SPF alignment (aspf)', pp.aspf],
          ['Policy (p)', pp.p],
          ['Subdomain policy (sp)', pp.sp],
          ['Non-existent subdomain policy (np)', pp.np],
          ['Percentage (pct)', pp.pct === null || pp.pct === undefined ? '' : String(pp.pct)],
          ['Failure reporting (fo)', pp.fo],
          ['Testing (t)', pp.testing],
          ['Discovery method', pp.discovery_method],
        ], 'policy')));
    const rows = (r.records || []).map((rec) => {
      const row = rec.row || {};
      const ev = row.policy_evaluated || {};
      const ids = rec.identifiers || {};
      const ar = rec.auth_results || {};
      return [
        el('span', { className: 'mono' }, row.source_ip || ''), fmtNum(row.count),
        badge(ev.disposition || ''), badge(ev.dkim || ''), badge(ev.spf || ''),
        list((ev.reason || []).map((x) => (x.comment ? `${x.type}: ${x.comment}` : x.type))),
        ids.header_from, ids.envelope_from, ids.envelope_to,
        authResults(ar.dkim, true), authResults(ar.spf, false),
      ];
    });
    put(view, section('Records',
        table('Records: one row per source IP and result',
            ['Source IP', 'Count', 'Disposition', 'DKIM aligned', 'SPF aligned', 'Reasons',
              'Header from', 'Envelope from', 'Envelope to', 'DKIM results', 'SPF results'],
            rows, { className: 'records', empty: 'The report has no records.' })));
    put(view, errorsSection(r.errors));
  }

  function renderTls(view, s, r) {
    const range = r['date-range'] || {};
    put(view, el('h1', {}, `TLS report from ${r['organization-name'] || s.org_name || 'unknown'}`));
    put(view, el('section', { className: 'stats' },
        card('Successful sessions', fmtNum(s.sessions_ok), '', 'good'),
        card('Failed sessions', fmtNum(s.sessions_failed), '', s.sessions_failed ? 'bad' : ''),
        card('Policies', fmtNum((r.policies || []).length))));
    put(view, section('Report',
        fields([
          ['Organization', r['organization-name']],
          ['Contact', r['contact-info']],
          ['Report ID', r['report-id']],
          ['Period (UTC)', `${str(range['start-datetime'])} – ${str(range['end-datetime'])}`],
        ], 'report-meta')));
    (r.policies || []).forEach((p, i) => {
      const pol = p.policy || {};
      const sum = p.summary || {};
      const details = (p['failure-details'] || []).map((d) => [
        badge(d['result-type'] || '', 'bad'), el('span', { className: 'mono' }, d['sending-mta-ip'] || ''),
        d['receiving-mx-hostname'], d['receiving-mx-helo'],
        el('span', { className: 'mono' }, d['receiving-ip'] || ''),
        fmtNum(d['failed-session-count']), d['additional-information'], d['failure-reason-code'],
      ]);
      put(view, section(`Policy ${i + 1}: ${pol['policy-domain'] || ''} (${pol['policy-type'] || ''})`,
          fields([
            ['Policy type', pol['policy-type']],
            ['Policy domain', pol['policy-domain']],
            ['Policy strings', list(pol['policy-string'])],
            ['MX hosts', list(pol['mx-host'])],
            ['Successful sessions', fmtNum(sum['total-successful-session-count'])],
            ['Failed sessions', fmtNum(sum['total-failure-session-count'])],
          ], 'policy'),
          table(`Failure details of policy ${i + 1}`,
              ['Result type', 'Sending MTA IP', 'Receiving MX hostname', 'Receiving MX HELO',
                'Receiving IP', 'Failed sessions', 'Additional information', 'Reason code'],
              details, { className: 'failures', empty: 'No failures.' })));
    });
    put(view, errorsSection(r.errors));
  }

  function renderArf(view, s, r) {
    put(view, el('h1', {}, `${r.feedback_type || 'Feedback'} report` +
        (s.org_name ? ` from ${s.org_name}` : '')));
    put(view, section('Feedback',
        fields([
          ['Feedback type', badge(r.feedback_type || '')],
          ['User agent', r.user_agent],
          ['Version', r.version],
          ['Arrival date (UTC)', r.arrival_date ? fmtTime(r.arrival_date) : r.arrival_date_raw],
          ['Source IP', r.source_ip],
          ['Incidents', r.incidents === null || r.incidents === undefined ? '' : fmtNum(r.incidents)],
          ['Reporting MTA', r.reporting_mta],
          ['Original mail from', r.original_mail_from],
          ['Original rcpt to', list(r.original_rcpt_to)],
          ['Reported domain', list(r.reported_domain)],
          ['Reported URI', list(r.reported_uri)],
        ], 'report-meta')));
    put(view, section('Authentication',
        fields([
          ['Authentication results', r.authentication_results ? el('span', { className: 'pre' }, r.authentication_results) : ''],
          ['Auth failure', badge(r.auth_failure || '')],
          ['Delivery result', r.delivery_result],
          ['DKIM domain', r.dkim_domain],
          ['DKIM selector', r.dkim_selector],
          ['DKIM identity', r.dkim_identity],
          ['SPF DNS', r.spf_dns],
          ['Identity alignment', r.identity_alignment],
        ], 'auth')));
    put(view, section('Original message',
        fields([
          ['Subject', r.subject],
          ['From', r.from],
          ['Message-ID', r.message_id],
          ['Type', r.original_message_type],
        ]),
        headerTable('Original headers', r.original_headers)));
    put(view, el('details', { className: 'card' },
        el('summary', {}, 'Every field of the feedback report'),
        headerTable('Feedback report fields', r.fields)));
    put(view, errorsSection(r.errors));
  }

  function renderDsn(view, s, r) {
    put(view, el('h1', {}, `Delivery status notification from ${r.reporting_mta || s.org_name || 'unknown'}`));
    put(view, section('Notification',
        fields([
          ['Reporting MTA', r.reporting_mta],
          ['Arrival date (UTC)', fmtTime(r.arrival_date)],
          ['Original envelope ID', r.original_envelope_id],
          ['DSN gateway', r.dsn_gateway],
          ['Received from MTA', r.received_from_mta],
          ['Subject', r.subject],
          ['From', r.from],
        ], 'report-meta')));
    const rows = (r.recipients || []).map((rc) => [
      rc.final_recipient, rc.original_recipient, badge(rc.action || ''), rc.status,
      rc.remote_mta, el('span', { className: 'pre' }, rc.diagnostic_code || ''),
      fmtTime(rc.last_attempt_date), rc.will_retry_until ? fmtTime(rc.will_retry_until) : '',
    ]);
    put(view, section('Recipients',
        table('Recipients', ['Final recipient', 'Original recipient', 'Action', 'Status',
          'Remote MTA', 'Diagnostic code', 'Last attempt', 'Will retry until'], rows,
        { className: 'recipients', empty: 'No recipient.' })));
    put(view, section('Returned message', headerTable('Original headers', r.original_headers)));
    put(view, errorsSection(r.errors));
  }

  // ------------------------------------------------------------------ start

  if (!location.hash) history.replaceState(null, '', '#/overview');
  route();
})();
