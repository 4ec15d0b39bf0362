// The page of mtbert serve: plain JavaScript, no framework, nothing loaded from elsewhere.
//
// Offsets: the API's "start" and "end" count Unicode code points (Python's str indexing), but
// JavaScript strings are UTF-16, where a character outside the Basic Multilingual Plane (an
// emoji) takes two units. codePointIndex maps one to the other before the note is sliced.
//
// Overlaps: every entity of every shown task is one <mark> (nested inside the marks that
// contain it); where two entities cross, the inner one is closed and reopened, so an entity
// can be split into fragments that share its data-eid. Each task draws its underline at its
// own depth (--lane), so overlapping entities of different tasks stay visible.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = 'mtbert.token';

  // Colours of the entity types, in the order the model lists them; more types than colours
  // take a hue from a hash of their name.
  const PALETTE = [
    '#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7',
    '#9c755f', '#2f4b7c', '#00a087', '#c51b7d', '#8c8c00', '#6a3d9a', '#bab0ac',
  ];

  const state = {
    token: '',
    model: null, // {ner: [{name, types}], sentence: [{name, kind, labels}]}
    colours: new Map(), // type -> colour
    hidden: new Set(), // ner tasks not shown
    last: null, // {text, entities, order: [task...]}
  };
  try {
    state.token = sessionStorage.getItem(TOKEN_KEY) || '';
  } catch (e) {
    // Storage may be disabled: the token then lives in memory only.
  }

  class APIError extends Error {
    constructor(status, message, retryAfter) {
      super(message);
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }

  // api calls the server: GET when body is undefined, else POST of body as JSON.
  async function api(path, body) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (state.token) headers.Authorization = 'Bearer ' + state.token;
    let resp;
    try {
      resp = await fetch(path, {
        method: body === undefined ? 'GET' : 'POST',
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        credentials: 'same-origin',
        referrerPolicy: 'no-referrer',
      });
    } catch (e) {
      throw new APIError(0, 'the server cannot be reached (' + e.message + ')');
    }
    const raw = await resp.text();
    let data = null;
    try {
      data = JSON.parse(raw);
    } catch (e) {
      data = null;
    }
    if (!resp.ok) {
      const msg = data && typeof data.error === 'string' ? data.error : raw.trim() || resp.statusText;
      throw new APIError(resp.status, msg, resp.headers.get('Retry-After'));
    }
    if (data === null) throw new APIError(resp.status, 'the answer is not JSON');
    return data;
  }

  // showError explains an API error; 401 opens the token form.
  function showError(err, what) {
    const box = $('error');
    let text;
    switch (err.status) {
      case 401:
        $('auth').hidden = false;
        $('token').focus();
        text = 'The server needs a bearer token (401). Enter it above.';
        break;
      case 413:
        text = `Too large (413): ${err.message}. Shorten the note or split it.`;
        break;
      case 503: {
        const wait = err.retryAfter ? ` Retry in ${err.retryAfter} s.` : '';
        text = `The server is busy or still loading (503): ${err.message}.${wait}`;
        break;
      }
      case 504:
        text = `The request ran past the server's deadline (504): ${err.message}.`;
        break;
      case 0:
        text = `No answer: ${err.message}.`;
        break;
      default:
        text = err.status ? `${what} failed (${err.status}): ${err.message}.` : `${what} failed: ${err.message}.`;
    }
    box.textContent = text;
    box.dataset.status = String(err.status || 0);
    box.hidden = false;
  }

  function clearError() {
    const box = $('error');
    box.hidden = true;
    box.textContent = '';
    delete box.dataset.status;
  }

  // typeOf returns the entity type of a tag (B-Drug -> Drug), or '' for O.
  function typeOf(label) {
    const m = /^[BIELSU]-(.+)$/.exec(label);
    return m ? m[1] : '';
  }

  function hashHue(s) {
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h % 360;
  }

  function colourOf(type) {
    let c = state.colours.get(type);
    if (!c) {
      const n = state.colours.size;
      c = n < PALETTE.length ? PALETTE[n] : `hsl(${hashHue(type)} 55% 42%)`;
      state.colours.set(type, c);
    }
    return c;
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('data-')) e.dataset[k.slice(5).replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = v;
      else if (k in e) e[k] = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c);
    return e;
  }

  // loadModel lists the tasks (GET /v1/model) and builds the task toggles and the legend.
  async function loadModel() {
    let info;
    try {
      info = await api('v1/model');
    } catch (err) {
      $('model-info').textContent = err.status === 401 ? 'Waiting for a bearer token.' : 'The model is not available yet.';
      if (err.status !== 401) $('auth').hidden = true; // the token, if any, was accepted
      showError(err, 'Loading the model');
      if (err.status === 503) setTimeout(loadModel, 1000 * (Number(err.retryAfter) || 2));
      return;
    }
    clearError();
    $('auth').hidden = true;
    const ner = [];
    const sentence = [];
    for (const t of info.tasks || []) {
      if (t.kind === 'ner') {
        const types = [];
        for (const l of t.labels || []) {
          const ty = typeOf(l);
          if (ty && !types.includes(ty)) types.push(ty);
        }
        types.forEach(colourOf);
        ner.push({ name: t.name, types });
      } else if (t.kind !== 'mlm') { // a masked-LM head trains the encoder, it predicts nothing
        sentence.push({ name: t.name, kind: t.kind, labels: t.labels || [] });
      }
    }
    state.model = { ner, sentence };
    const enc = info.encoder || {};
    const dims = enc.num_hidden_layers ? ` · encoder ${enc.num_hidden_layers} layers × ${enc.hidden_size}` : '';
    $('model-info').textContent = `${ner.length} NER task${ner.length === 1 ? '' : 's'}, ${sentence.length} sentence task${sentence.length === 1 ? '' : 's'}${dims}`;
    buildToggles();
    $('extract').disabled = ner.length === 0;
    $('compare').disabled = sentence.length === 0;
    $('pair-tasks').textContent = sentence.length ? 'Tasks: ' + sentence.map((t) => `${t.name} (${t.kind})`).join(', ') : 'This model has no sentence-level task.';
    if (!sentence.length) $('pair-section').classList.add('muted-section');
    updateCount();
  }

  function buildToggles() {
    const box = $('tasks');
    for (const n of [...box.children]) if (n.tagName !== 'LEGEND') n.remove();
    for (const task of state.model.ner) {
      const id = 'toggle-' + task.name;
      const cb = el('input', { type: 'checkbox', id, checked: !state.hidden.has(task.name), 'data-task': task.name });
      cb.addEventListener('change', () => {
        if (cb.checked) state.hidden.delete(task.name);
        else state.hidden.add(task.name);
        render();
      });
      const chips = el('span', { class: 'chips' });
      for (const ty of task.types) {
        const chip = el('span', { class: 'chip', 'data-type': ty, 'data-task': task.name }, el('span', { class: 'swatch', 'aria-hidden': 'true' }), ty, el('span', { class: 'count' }));
        chip.style.setProperty('--c', colourOf(ty));
        chips.append(chip);
      }
      box.append(el('div', { class: 'task-row' }, cb, el('label', { htmlFor: id, class: 'task-name' }, task.name, el('span', { class: 'count', 'data-task-count': task.name })), chips));
    }
  }

  function updateCount() {
    const v = $('note').value;
    const chars = [...v].length;
    $('note-count').textContent = v ? `${chars.toLocaleString()} characters` : '';
    $('extract').disabled = !state.model || state.model.ner.length === 0;
  }

  // codePointIndex returns idx with idx[k] = the UTF-16 offset of code point k of text
  // (idx has one more entry than text has code points).
  function codePointIndex(text) {
    const idx = [0];
    let u = 0;
    for (const ch of text) {
      u += ch.length;
      idx.push(u);
    }
    return idx;
  }

  // layout turns a note and its entities (per task, code point offsets) into the DOM of the
  // highlighted note, under root; order lists the tasks to show, their index being their lane.
  function layout(root, text, entities, order, lanes) {
    root.replaceChildren();
    const idx = codePointIndex(text);
    const ents = [];
    for (const task of order) {
      (entities[task] || []).forEach((e, i) => {
        if (!(e.start >= 0 && e.end > e.start && e.end < idx.length)) return; // not in the text
        ents.push({ ...e, task, lane: lanes.get(task) || 0, eid: `${task}:${i}`, u0: idx[e.start], u1: idx[e.end] });
      });
    }
    const starts = new Map();
    const points = new Set([0, text.length]);
    for (const e of ents) {
      points.add(e.u0);
      points.add(e.u1);
      if (!starts.has(e.u0)) starts.set(e.u0, []);
      starts.get(e.u0).push(e);
    }
    // Longer first, so that an entity opens around the ones it contains.
    for (const list of starts.values()) list.sort((a, b) => b.u1 - a.u1 || a.lane - b.lane);
    const sorted = [...points].sort((a, b) => a - b);
    const stack = [{ node: root, e: null }];
    const open = (e, cont) => {
      const m = document.createElement('mark');
      m.className = 'ent';
      m.dataset.task = e.task;
      m.dataset.type = e.type;
      m.dataset.start = String(e.start);
      m.dataset.end = String(e.end);
      m.dataset.score = String(e.score);
      m.dataset.eid = e.eid;
      if (cont) m.dataset.cont = '1';
      m.style.setProperty('--c', colourOf(e.type));
      m.style.setProperty('--lane', String(e.lane));
      stack[stack.length - 1].node.append(m);
      stack.push({ node: m, e });
    };
    for (let k = 0; k < sorted.length; k++) {
      const p = sorted[k];
      if (stack.some((f) => f.e && f.e.u1 === p)) {
        const reopen = [];
        while (stack.some((f) => f.e && f.e.u1 === p)) {
          const f = stack.pop();
          if (f.e.u1 !== p) reopen.push(f.e);
        }
        for (const e of reopen.reverse()) open(e, true);
      }
      for (const e of starts.get(p) || []) open(e, false);
      if (k + 1 < sorted.length && sorted[k + 1] > p) {
        stack[stack.length - 1].node.append(document.createTextNode(text.slice(p, sorted[k + 1])));
      }
    }
    return ents;
  }

  // render draws the last answer with the tasks that are ticked.
  function render() {
    const doc = $('doc');
    const tbody = $('ent-table').tBodies[0];
    tbody.replaceChildren();
    if (!state.last) return;
    const { text, entities } = state.last;
    const lanes = new Map(state.model.ner.map((t, i) => [t.name, i]));
    const order = state.last.order.filter((t) => !state.hidden.has(t));
    const ents = layout(doc, text, entities, order, lanes);
    doc.hidden = false;
    $('table-box').hidden = false;
    const counts = new Map();
    for (const task of state.last.order) {
      const n = (entities[task] || []).length;
      const c = document.querySelector(`[data-task-count="${CSS.escape(task)}"]`);
      if (c) c.textContent = ` ${n}`;
      for (const e of entities[task] || []) counts.set(task + '\u0000' + e.type, (counts.get(task + '\u0000' + e.type) || 0) + 1);
    }
    for (const chip of document.querySelectorAll('#tasks .chip')) {
      const n = counts.get(chip.dataset.task + '\u0000' + chip.dataset.type) || 0;
      chip.querySelector('.count').textContent = ` ${n}`;
      chip.classList.toggle('none', n === 0);
    }
    ents.sort((a, b) => a.start - b.start || b.end - a.end || a.lane - b.lane);
    for (const e of ents) {
      const sw = el('span', { class: 'swatch', 'aria-hidden': 'true' });
      sw.style.setProperty('--c', colourOf(e.type));
      tbody.append(el('tr', {}, el('td', {}, e.task), el('td', {}, sw, e.type), el('td', { class: 'num' }, `[${e.start}, ${e.end})`), el('td', {}, e.text), el('td', { class: 'num' }, e.score.toFixed(3))));
    }
    const total = state.last.order.reduce((n, t) => n + (entities[t] || []).length, 0);
    const shown = ents.length;
    $('status').textContent = total === 0 ? 'No entities found in this note.' : `${shown} of ${total} entities shown. Hover over one for its task, type, character offsets and score.`;
    $('status').dataset.state = 'done';
  }

  async function extract(ev) {
    ev.preventDefault();
    clearError();
    const text = $('note').value;
    const btn = $('extract');
    btn.disabled = true;
    $('status').textContent = 'Extracting…';
    $('status').dataset.state = 'busy';
    try {
      const res = await api('v1/extract', { text });
      state.last = { text, entities: res.entities || {}, order: state.model.ner.map((t) => t.name).filter((t) => t in (res.entities || {})) };
      render();
    } catch (err) {
      // Never leave the entities of an earlier note under a new one.
      state.last = null;
      $('doc').replaceChildren();
      $('doc').hidden = true;
      $('table-box').hidden = true;
      $('status').textContent = 'No result.';
      $('status').dataset.state = 'error';
      showError(err, 'Extraction');
    } finally {
      btn.disabled = false;
    }
  }

  async function compare(ev) {
    ev.preventDefault();
    clearError();
    const box = $('pairs');
    const btn = $('compare');
    btn.disabled = true;
    box.dataset.state = 'busy';
    try {
      const res = await api('v1/pairs', { text_a: $('text-a').value, text_b: $('text-b').value });
      box.replaceChildren();
      for (const task of state.model.sentence) {
        const r = (res.pairs || {})[task.name];
        if (!r) continue;
        const card = el('div', { class: 'pair-result', 'data-task': task.name });
        if (typeof r.score === 'number') {
          card.dataset.score = String(r.score);
          card.append(el('h3', {}, task.name), el('p', { class: 'score' }, el('span', { class: 'muted' }, 'score '), el('strong', {}, r.score.toFixed(3))));
        } else {
          card.dataset.label = r.label || '';
          const labels = task.labels.length ? task.labels : Object.keys(r.probs || {});
          const rows = el('div', { class: 'bars', role: 'list' });
          for (const l of labels) {
            const p = (r.probs || {})[l] || 0;
            const bar = el('span', { class: 'bar' });
            bar.style.setProperty('--p', String(p));
            rows.append(el('div', { class: 'bar-row' + (l === r.label ? ' best' : ''), role: 'listitem', 'data-label': l, 'data-prob': String(p) }, el('span', { class: 'bar-label' }, l), el('span', { class: 'bar-track', 'aria-hidden': 'true' }, bar), el('span', { class: 'num' }, p.toFixed(3))));
          }
          card.append(el('h3', {}, task.name, ' ', el('span', { class: 'pill' }, r.label || '')), rows);
        }
        box.append(card);
      }
      box.dataset.state = 'done';
    } catch (err) {
      box.replaceChildren(); // no answer of an earlier pair under the new one
      box.dataset.state = 'error';
      showError(err, 'The pair request');
    } finally {
      btn.disabled = false;
    }
  }

  // The tooltip lists every entity under the pointer, outermost first.
  function showTip(target, x, y) {
    const tip = $('tip');
    const chain = [];
    for (let n = target; n && n.id !== 'doc'; n = n.parentElement) {
      if (n.tagName === 'MARK') chain.unshift(n);
    }
    if (!chain.length) {
      tip.hidden = true;
      return;
    }
    tip.replaceChildren();
    for (const m of chain) {
      const sw = el('span', { class: 'swatch', 'aria-hidden': 'true' });
      sw.style.setProperty('--c', colourOf(m.dataset.type));
      tip.append(el('div', { class: 'tip-row' }, sw, el('strong', {}, m.dataset.type), ` · ${m.dataset.task} · characters [${m.dataset.start}, ${m.dataset.end}) · score ${Number(m.dataset.score).toFixed(3)}`));
    }
    tip.hidden = false;
    const r = tip.getBoundingClientRect();
    const left = Math.min(x + 12, window.innerWidth - r.width - 8);
    tip.style.left = `${Math.max(8, left) + window.scrollX}px`;
    tip.style.top = `${y + 18 + window.scrollY}px`;
  }

  function init() {
    const tok = $('token');
    $('auth-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      state.token = tok.value.trim();
      tok.value = '';
      try {
        sessionStorage.setItem(TOKEN_KEY, state.token);
      } catch (e) {
        // Memory only.
      }
      loadModel();
    });
    $('extract-form').addEventListener('submit', extract);
    $('pair-form').addEventListener('submit', compare);
    $('note').addEventListener('input', updateCount);
    $('note').addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) $('extract-form').requestSubmit();
    });
    $('file').addEventListener('change', async () => {
      const f = $('file').files[0];
      if (!f) return;
      try {
        $('note').value = await f.text();
        updateCount();
        $('note').dataset.loaded = f.name;
      } catch (e) {
        showError(new APIError(0, e.message), 'Reading the file');
      }
      $('file').value = '';
    });
    const doc = $('doc');
    doc.addEventListener('mouseover', (ev) => showTip(ev.target, ev.clientX, ev.clientY));
    doc.addEventListener('mousemove', (ev) => showTip(ev.target, ev.clientX, ev.clientY));
    doc.addEventListener('mouseleave', () => {
      $('tip').hidden = true;
    });
    loadModel();
  }

  // For the tests: the layout function alone.
  window.mtbert = { layout, codePointIndex };
  init();
})();
