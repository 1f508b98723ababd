// The memory map page's HTML, CSS and JavaScript: nothing from the network, so that a
// page saved to a file opens anywhere. The script reads the data element and draws;
// every user string (tags, labels) reaches the page through textContent, setAttribute
// and dataset, never as markup. The first script counts script errors on <body>
// (data-script-errors), and the last act of drawing sets data-rendered="1".

#include "map_page_assets.hpp"

namespace gpumem::control::map_assets {

const char* const head = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gpumem memory map</title>
<style>
:root { font: 14px/1.4 system-ui, "Segoe UI", Helvetica, Arial, sans-serif; color: #1d2430; background: #f6f7f9; }
body { margin: 0 auto; padding: 16px 24px 40px; max-width: 1500px; }
h1 { font-size: 20px; margin: 0 0 6px; }
h2 { font-size: 17px; margin: 0 0 4px; }
h3 { font-size: 14px; margin: 18px 0 6px; color: #3d4656; }
.device { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; padding: 14px 16px; margin: 16px 0; }
.summary { margin: 0 0 8px; color: #4d5666; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 16px; margin: 6px 0; font-size: 12px; }
.legend .item { display: inline-flex; align-items: center; gap: 5px; }
.swatch { display: inline-block; width: 22px; height: 12px; border: 1px solid rgba(0, 0, 0, .25); vertical-align: middle; }
.arena { position: relative; height: 16px; border: 1px solid #c9ced8; border-radius: 3px; margin: 6px 0 2px;
  background: #eef0f4; }
.arena-mark { position: absolute; top: 0; bottom: 0; min-width: 2px; }
.arena-mark.mapped { background: #3a6fd8; }
.arena-mark.cached { background: #39a866; }
.arena-mark.released { background: repeating-linear-gradient(45deg, #8d97a8 0 3px, #fff 3px 6px); }
.arena-caption { font: 11px ui-monospace, Menlo, Consolas, monospace; color: #6b7485; display: flex;
  justify-content: space-between; }
.segments { margin-top: 10px; display: flex; flex-direction: column; gap: 3px; }
.segment { display: flex; align-items: center; gap: 10px; }
.segment-label { flex: 0 0 36em; font: 12px ui-monospace, Menlo, Consolas, monospace; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; }
.segment-track { flex: 1 1 auto; min-width: 0; }
.segment-bar { display: flex; height: 22px; border: 1px solid #7d8798; border-radius: 2px; overflow: hidden;
  background: #fff; box-sizing: border-box; }
.segment[data-state="cached"] .segment-bar, .swatch.cached { border: 2px dashed #2e9b5b; }
.segment[data-state="released"] .segment-bar, .swatch.released { border: 1px dashed #8d97a8; opacity: .8; }
.block { flex: 1 0 0; min-width: 3px; box-sizing: border-box; border-right: 1px solid #fff; }
.block:last-child { border-right: 0; }
.block[data-state="resident"] { background: var(--c); }
.block[data-state="backed_up"] { background: repeating-linear-gradient(45deg, var(--c) 0 5px, #fff 5px 8px); }
.block[data-state="discarded"] { background: repeating-linear-gradient(-45deg, var(--c) 0 2px, #fff 2px 7px); }
.block[data-state="free"] { background: #e4e7ed; }
.segment[data-state="released"] .block[data-state="free"] { background: #f5f6f8; }
.block:hover { outline: 2px solid #111; outline-offset: -2px; }
.empty { color: #6b7485; font-style: italic; }
table.stats { border-collapse: collapse; font-size: 12px; font-variant-numeric: tabular-nums; }
table.stats th, table.stats td { border: 1px solid #dde1e8; padding: 3px 8px; text-align: right; white-space: nowrap; }
table.stats th { background: #f1f3f7; font-weight: 600; }
table.stats .name { text-align: left; max-width: 22em; overflow: hidden; text-overflow: ellipsis; }
table.stats tr.total td { font-weight: 600; background: #fafbfc; }
.peak { color: #6b7485; }
.counters { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 2px 18px;
  font-size: 12px; margin-top: 8px; font-variant-numeric: tabular-nums; }
.counters div { display: flex; justify-content: space-between; border-bottom: 1px dotted #d3d8e0; }
svg.fragmentation { width: 100%; max-width: 820px; height: auto; font-size: 12px; }
</style>
</head>
<body data-script-errors="0" data-rendered="0">
<script>
window.addEventListener('error', function () {
  var b = document.body;
  b.setAttribute('data-script-errors', String(Number(b.getAttribute('data-script-errors')) + 1));
});
</script>
<main id="map"><noscript>The memory map is drawn by its script; enable JavaScript to see it.</noscript></main>
<script type="application/json" id="gpumem-map-data">)html";

const char* const tail = R"html(</script>
<script>
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('gpumem-map-data').textContent);
  var root = document.getElementById('map');
  var svgNs = 'http://www.w3.org/2000/svg';

  function el(name, cls, text) {
    var e = document.createElement(name);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  // Sets data-<key> for each key of `values`: the hooks readers and tests find elements by.
  function setData(e, values) {
    Object.keys(values).forEach(function (k) { e.setAttribute('data-' + k, String(values[k])); });
  }
  function svg(name, attrs, text) {
    var e = document.createElementNS(svgNs, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  function bytes(n) {
    var v = Math.abs(n), i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (n < 0 ? '-' : '') + (i === 0 ? v : Math.round(v * 100) / 100) + ' ' + units[i];
  }
  function count(n) { return Number(n).toLocaleString('en-US'); }
  function age(ns) {
    var s = ns / 1e9;
    if (s < 1e-3) return Math.round(ns / 1e3) + ' \u00b5s';
    if (s < 1) return Math.round(s * 1e4) / 10 + ' ms';
    if (s < 120) return Math.round(s * 100) / 100 + ' s';
    if (s < 7200) return Math.round(s / 6) / 10 + ' min';
    if (s < 172800) return Math.round(s / 360) / 10 + ' h';
    return Math.round(s / 8640) / 10 + ' d';
  }
  function percent(x) { return Math.round(x * 1000) / 10 + '%'; }
  function words(name) { return String(name).replace(/_/g, ' '); }

  // One colour per tag over every device, the same in every section of the page.
  var tagNames = [];
  function addTag(t) { if (tagNames.indexOf(t) < 0) tagNames.push(t); }
  data.devices.forEach(function (d) {
    Object.keys(d.tags).forEach(addTag);
    d.segments.forEach(function (s) { addTag(s.tag); });
    Object.keys(d.statistics.tags).forEach(addTag);
  });
  tagNames.sort();
  var colours = new Map();
  tagNames.forEach(function (t, i) {
    colours.set(t, 'hsl(' + ((210 + i * 137.508) % 360).toFixed(1) + ', 62%, 47%)');
  });
  function colourOf(tag) { return colours.get(tag) || '#888'; }

  function legend() {
    var box = el('div', 'legend');
    function item(swatch, text) {
      var i = el('span', 'item');
      i.appendChild(swatch);
      i.appendChild(el('span', null, text));
      box.appendChild(i);
    }
    tagNames.forEach(function (t) {
      var s = el('span', 'swatch');
      s.style.background = colourOf(t);
      item(s, t);
    });
    [['resident', 'resident'], ['backed_up', 'backed up (asleep)'], ['discarded', 'discarded (asleep)'],
     ['free', 'free']].forEach(function (p) {
      var s = el('span', 'swatch');
      s.style.background = p[0] === 'free' ? '#e4e7ed' : p[0] === 'resident' ? '#6b7485'
        : p[0] === 'backed_up' ? 'repeating-linear-gradient(45deg, #6b7485 0 5px, #fff 5px 8px)'
        : 'repeating-linear-gradient(-45deg, #6b7485 0 2px, #fff 2px 7px)';
      item(s, 'block ' + p[1]);
    });
    [['mapped', 'segment mapped'], ['cached', 'segment cached (wholly free, kept for reuse)'],
     ['released', 'segment released (its tag asleep)']].forEach(function (p) {
      var s = el('span', 'swatch ' + p[0]);
      s.style.background = '#fff';
      item(s, p[1]);
    });
    return box;
  }

  function blockTitle(seg, b) {
    if (b.state === 'free')
      return ['free: ' + bytes(b.size) + ' (' + count(b.size) + ' B)', 'tag ' + seg.tag + ', ' + seg.pool + ' pool',
              b.address].join('\n');
    var lines = ['region ' + b.region + ': ' + seg.tag,
                 bytes(b.size) + ' (' + count(b.size) + ' B; ' + count(b.requested) + ' B asked)',
                 words(b.state) + (b.strategy ? ', ' + words(b.strategy) : '')];
    if (b.age_ns !== undefined)
      lines.push('age ' + age(b.age_ns) + ' (last use before the newest in this snapshot)');
    if (b.contents_defined === false) lines.push('contents undefined (woke from a discard)');
    lines.push(b.address);
    return lines.join('\n');
  }

  function arenaBand(d) {
    var wrap = el('div');
    var band = el('div', 'arena');
    band.title = 'the arena: ' + bytes(d.arena.size) + ' of addresses from ' + d.arena.base;
    d.segments.forEach(function (s) {
      var m = el('div', 'arena-mark ' + s.state);
      m.style.left = (s.offset / d.arena.size * 100) + '%';
      m.style.width = (s.size / d.arena.size * 100) + '%';
      m.title = s.address + ': ' + bytes(s.size) + ', ' + s.tag + ', ' + s.state;
      band.appendChild(m);
    });
    wrap.appendChild(band);
    var caption = el('div', 'arena-caption');
    caption.appendChild(el('span', null, d.arena.base));
    caption.appendChild(el('span', null, 'arena ' + bytes(d.arena.size)));
    wrap.appendChild(caption);
    return wrap;
  }

  function segmentList(d) {
    var list = el('div', 'segments');
    if (d.segments.length === 0) {
      list.appendChild(el('p', 'empty', 'No segments: nothing is mapped or reserved on this device.'));
      return list;
    }
    var largest = d.segments.reduce(function (m, s) { return Math.max(m, s.size); }, 1);
    d.segments.forEach(function (s) {
      var row = el('div', 'segment');
      setData(row, {state: s.state, tag: s.tag, size: s.size, pool: s.pool, address: s.address});
      var used = s.blocks.filter(function (b) { return b.state !== 'free'; }).length;
      row.title = 'segment ' + s.address + ': ' + bytes(s.size) + ', ' + s.tag + ', ' + s.pool + ' pool, ' +
        s.state + '; ' + s.chunks + ' chunk(s), ' + s.blocks.length + ' block(s), ' + used + ' allocated';
      row.appendChild(el('div', 'segment-label',
                         s.address + '  ' + bytes(s.size) + '  ' + s.tag + ' \u00b7 ' + s.pool + ' \u00b7 ' + s.state));
      var track = el('div', 'segment-track');
      var bar = el('div', 'segment-bar');
      bar.style.width = Math.max(s.size / largest * 100, 3) + '%';
      s.blocks.forEach(function (b) {
        var e = el('div', 'block');
        setData(e, {state: b.state, tag: s.tag, size: b.size, region: b.region, address: b.address});
        e.style.flexGrow = String(b.size / s.size);
        e.style.setProperty('--c', colourOf(s.tag));
        e.title = blockTitle(s, b);
        bar.appendChild(e);
      });
      track.appendChild(bar);
      row.appendChild(track);
      list.appendChild(row);
    });
    return list;
  }

  var kinds = ['allocated', 'requested', 'active', 'reserved', 'cached'];
  function statsTable(d) {
    var t = el('table', 'stats');
    var head = el('thead'), r1 = el('tr'), r2 = el('tr');
    var name = el('th', 'name', 'tag');
    name.rowSpan = 2;
    r1.appendChild(name);
    kinds.forEach(function (k) {
      var th = el('th', null, k + ' bytes');
      th.colSpan = 2;
      r1.appendChild(th);
      r2.appendChild(el('th', null, 'current'));
      r2.appendChild(el('th', 'peak', 'peak'));
    });
    ['allocations', 'frees', 'fragmentation'].forEach(function (k) {
      var th = el('th', null, k);
      th.rowSpan = 2;
      r1.appendChild(th);
    });
    head.appendChild(r1);
    head.appendChild(r2);
    t.appendChild(head);
    var body = el('tbody');
    function row(label, grid, cls) {
      var tr = el('tr', cls);
      var n = el('td', 'name', label);
      n.title = label;
      if (cls !== 'total') {
        tr.setAttribute('data-tag', label);
        var sw = el('span', 'swatch');
        sw.style.background = colourOf(label);
        sw.style.marginRight = '6px';
        n.textContent = '';
        n.appendChild(sw);
        n.appendChild(document.createTextNode(label));
      }
      tr.appendChild(n);
      kinds.forEach(function (k) {
        var s = grid[k];
        var cur = el('td', null, bytes(s.current));
        cur.title = k + ': ' + count(s.current) + ' B now; ' + count(s.allocated) + ' B added, ' +
          count(s.freed) + ' B taken away in all';
        tr.appendChild(cur);
        tr.appendChild(el('td', 'peak', bytes(s.peak)));
      });
      tr.appendChild(el('td', null, count(grid.allocations)));
      tr.appendChild(el('td', null, count(grid.frees)));
      tr.appendChild(el('td', null, percent(grid.fragmentation)));
      body.appendChild(tr);
    }
    row('total', d.statistics.total, 'total');
    Object.keys(d.statistics.tags).sort().forEach(function (tag) { row(tag, d.statistics.tags[tag]); });
    t.appendChild(body);
    return t;
  }

  function counters(d) {
    var box = el('div', 'counters');
    Object.keys(d.statistics).forEach(function (k) {
      var v = d.statistics[k];
      if (typeof v !== 'number') return;
      var text = k.indexOf('bytes') === 0 ? bytes(v) : /seconds$/.test(k) ? v.toFixed(3) + ' s' : count(v);
      var line = el('div');
      line.appendChild(el('span', null, words(k)));
      line.appendChild(el('span', null, text));
      box.appendChild(line);
    });
    return box;
  }

  function fragmentationChart(d) {
    var rows = [['total', d.statistics.total]];
    Object.keys(d.statistics.tags).sort().forEach(function (t) { rows.push([t, d.statistics.tags[t]]); });
    var labelW = 170, barW = 380, rowH = 24, W = labelW + barW + 260;
    var chart = svg('svg', {'class': 'fragmentation', viewBox: '0 0 ' + W + ' ' + (rows.length * rowH + 8),
                            role: 'img', 'aria-label': 'fragmentation by tag'});
    rows.forEach(function (r, i) {
      var tag = r[0], g = r[1], y = 4 + i * rowH;
      var reserved = g.reserved.current, unused = Math.max(reserved - g.active.current, 0);
      var group = svg('g', {'class': 'frag-row'});
      var shown = tag.length > 24 ? tag.slice(0, 23) + '\u2026' : tag;
      group.appendChild(svg('title', {}, tag + ': ' + percent(g.fragmentation) + ' of ' + bytes(reserved) +
                                         ' mapped holds no live byte'));
      group.appendChild(svg('text', {x: labelW - 8, y: y + 15, 'text-anchor': 'end',
                                     'font-weight': i === 0 ? 'bold' : 'normal'}, shown));
      group.appendChild(svg('rect', {x: labelW, y: y + 3, width: barW, height: rowH - 8, fill: '#eef0f4'}));
      var bar = svg('rect', {'class': 'frag-bar', x: labelW, y: y + 3, height: rowH - 8,
                             width: Math.max(0, Math.min(1, g.fragmentation)) * barW,
                             fill: i === 0 ? '#4d5666' : colourOf(tag)});
      bar.setAttribute('data-tag', tag);
      bar.setAttribute('data-fragmentation', g.fragmentation);
      group.appendChild(bar);
      group.appendChild(svg('text', {x: labelW + barW + 8, y: y + 15},
                            reserved === 0 ? 'nothing mapped'
                              : percent(g.fragmentation) + ': ' + bytes(unused) + ' of ' + bytes(reserved) + ' unused'));
      chart.appendChild(group);
    });
    return chart;
  }

  function device(d) {
    var sec = el('section', 'device');
    sec.setAttribute('data-device', d.device);
    var blocks = 0;
    d.segments.forEach(function (s) { blocks += s.blocks.length; });
    sec.setAttribute('data-segments', d.segments.length);
    sec.setAttribute('data-blocks', blocks);
    sec.appendChild(el('h2', null, d.label + ' \u2014 ' + d.backend + ', ' + words(d.state)));
    var tags = Object.keys(d.tags).sort().map(function (t) { return t + ' ' + d.tags[t]; });
    var total = d.statistics.total;
    sec.appendChild(el('p', 'summary',
      d.segments.length + ' segment(s), ' + blocks + ' block(s), ' + d.regions + ' region(s); ' +
      bytes(total.reserved.current) + ' mapped, ' + bytes(total.allocated.current) + ' allocated, ' +
      bytes(total.cached.current) + ' cached' + (tags.length ? '; tags: ' + tags.join(', ') : '; no tags')));
    sec.appendChild(arenaBand(d));
    sec.appendChild(segmentList(d));
    sec.appendChild(el('h3', null, 'Statistics'));
    sec.appendChild(statsTable(d));
    sec.appendChild(counters(d));
    sec.appendChild(el('h3', null, 'Fragmentation by tag (share of mapped bytes no live byte uses)'));
    sec.appendChild(fragmentationChart(d));
    return sec;
  }

  document.title = data.title;
  root.textContent = '';
  root.appendChild(el('h1', null, data.title));
  root.appendChild(legend());
  if (data.devices.length === 0)
    root.appendChild(el('p', 'empty', 'No snapshots.'));
  data.devices.forEach(function (d) { root.appendChild(device(d)); });
  document.body.setAttribute('data-rendered', '1');
})();
</script>
</body>
</html>
)html";

} // namespace gpumem::control::map_assets
