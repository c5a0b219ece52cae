/* sclip_lib explorers: attention and similarity maps in the browser, from float16 arrays computed by
   sclip_lib/explorer.py. Plain JavaScript, no dependencies, nothing fetched from outside the page's site.
   Each explorer output holds its config as JSON and calls SclipExplorer.mount(id); this file may be
   included several times on one page and defines itself once. */
(function () {
  "use strict";
  if (window.SclipExplorer) return;

  // -- data --------------------------------------------------------------------------------------
  var F16 = null;
  function f16Table() {  // every float16 bit pattern -> its value
    if (F16) return F16;
    F16 = new Float32Array(65536);
    for (var h = 0; h < 65536; h++) {
      var s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
      F16[h] = e === 0 ? s * m * Math.pow(2, -24)
        : e === 31 ? (m ? NaN : s * Infinity)
        : s * (1 + m / 1024) * Math.pow(2, e - 15);
    }
    return F16;
  }
  function decodeF16(buffer) {
    var u = new Uint16Array(buffer), t = f16Table(), out = new Float32Array(u.length);
    for (var i = 0; i < u.length; i++) out[i] = t[u[i]];
    return out;
  }
  function fromBase64(b64) {
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes.buffer;
  }
  var loaded = {};  // one download per file and page, shared by all explorers
  function loadArray(src, name) {
    var key = src.url || name;
    if (!loaded[key]) {
      loaded[key] = (src.url
        ? fetch(src.url).then(function (r) {
            if (!r.ok) throw new Error("could not load " + src.url + " (HTTP " + r.status + ")");
            return r.arrayBuffer();
          })
        : Promise.resolve(fromBase64(src.b64))).then(decodeF16);
    }
    return loaded[key];
  }
  function imageSrc(src) { return src.url || "data:image/jpeg;base64," + src.b64; }

  // -- drawing -----------------------------------------------------------------------------------
  var MAPS = {  // colormap anchors at 0, 1/8, ..., 1
    viridis: [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141], [39, 173, 129],
              [92, 200, 99], [170, 220, 50], [253, 231, 37]],
    inferno: [[0, 0, 4], [31, 12, 72], [85, 15, 109], [136, 34, 106], [186, 54, 85], [227, 89, 51],
              [249, 140, 10], [249, 201, 50], [252, 255, 164]]
  };
  function colour(map, t) {
    var a = MAPS[map], x = Math.min(Math.max(t, 0), 1) * (a.length - 1), i = Math.min(Math.floor(x), a.length - 2), f = x - i;
    return [0, 1, 2].map(function (c) { return Math.round(a[i][c] + f * (a[i + 1][c] - a[i][c])); });
  }
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "style") e.style.cssText = attrs[k];
      else if (k === "text") e.textContent = attrs[k];
      else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { e.appendChild(c); });
    return e;
  }
  function panel(title, size) {
    var canvas = el("canvas", { width: size[1], height: size[0], style: "width:" + size[1] + "px;height:" + size[0] + "px;display:block;cursor:crosshair;touch-action:none" });
    var caption = el("div", { style: "font-size:12px;line-height:1.4;min-height:3.2em;max-width:" + size[1] + "px" });
    var box = el("div", { style: "margin:0 8px 8px 0" }, [el("div", { style: "font-weight:bold;font-size:13px", text: title }), canvas, caption]);
    return { box: box, canvas: canvas, ctx: canvas.getContext("2d", { willReadFrequently: true }), caption: caption };
  }
  // values (grid[0]*grid[1]) as a heat map over the image, min..max of the map mapped to the colormap
  function drawMap(p, img, values, grid, map, lo, hi, alpha) {
    var g = document.createElement("canvas");
    g.width = grid[1]; g.height = grid[0];
    var gc = g.getContext("2d"), data = gc.createImageData(grid[1], grid[0]);
    for (var i = 0; i < values.length; i++) {
      var c = colour(map, hi > lo ? (values[i] - lo) / (hi - lo) : 0.5);
      data.data[4 * i] = c[0]; data.data[4 * i + 1] = c[1]; data.data[4 * i + 2] = c[2]; data.data[4 * i + 3] = 255;
    }
    gc.putImageData(data, 0, 0);
    var ctx = p.ctx;
    ctx.globalAlpha = 1; ctx.drawImage(img, 0, 0, p.canvas.width, p.canvas.height);
    ctx.globalAlpha = alpha; ctx.imageSmoothingEnabled = false;
    ctx.drawImage(g, 0, 0, p.canvas.width, p.canvas.height);
    ctx.globalAlpha = 1;
  }
  function markPatch(p, grid, patch, colour_) {
    var w = p.canvas.width / grid[1], h = p.canvas.height / grid[0];
    p.ctx.strokeStyle = colour_ || "cyan"; p.ctx.lineWidth = 2;
    p.ctx.strokeRect(patch[1] * w + 1, patch[0] * h + 1, w - 2, h - 2);
  }
  function patchAt(canvas, grid, ev) {
    var r = canvas.getBoundingClientRect(), pt = ev.touches ? ev.touches[0] : ev;
    var col = Math.floor((pt.clientX - r.left) / r.width * grid[1]), row = Math.floor((pt.clientY - r.top) / r.height * grid[0]);
    return [Math.min(Math.max(row, 0), grid[0] - 1), Math.min(Math.max(col, 0), grid[1] - 1)];
  }
  function onPatch(canvases, grid, fn) {  // hover, tap or drag on any panel selects a patch
    canvases.forEach(function (c) {
      var handler = function (ev) { fn(patchAt(c, grid, ev)); if (ev.touches) ev.preventDefault(); };
      c.addEventListener("mousemove", handler);
      c.addEventListener("click", handler);
      c.addEventListener("touchstart", handler, { passive: false });
      c.addEventListener("touchmove", handler, { passive: false });
    });
  }
  function fmt(x) { return x.toFixed(4); }
  function header(root, cfg, text) {
    var m = cfg.manifest;
    if (m.smoke) {
      root.appendChild(el("div", { "class": "sclip-explorer-smoke", style: "background:#b00020;color:white;padding:4px 8px;font-weight:bold;margin-bottom:6px",
        text: "SMOKE MODE: computed with UNTRAINED random weights. These maps are NOT meaningful." }));
    }
    root.appendChild(el("div", { style: "font-size:13px;margin-bottom:6px", text: text + " Model: " + m.model + ", weights: " + m.weights + "." }));
  }
  function imageChooser(cfg, onChange) {
    var select = el("select", { "data-role": "image" });
    cfg.manifest.images.forEach(function (im, i) { select.appendChild(el("option", { value: String(i), text: im.name })); });
    select.addEventListener("change", function () { onChange(+select.value); });
    return select;
  }
  function startImage(cfg) {
    var names = cfg.manifest.images.map(function (i) { return i.name; });
    return Math.max(0, names.indexOf(cfg.options.image));
  }
  function loadImage(src) {
    return new Promise(function (ok, fail) {
      var img = new Image();
      img.onload = function () { ok(img); };
      img.onerror = function () { fail(new Error("could not load the image " + (src.url || "(inline)"))); };
      img.src = imageSrc(src);
    });
  }

  // -- attention explorer ------------------------------------------------------------------------
  function attentionExplorer(root, cfg) {
    var m = cfg.manifest, grid = m.grid, N = grid[0] * grid[1], L = N + 1, size = m.size;
    header(root, cfg, "Hover over (or tap) a patch: its attention row in the chosen block, heads averaged, " +
      "under CLIP's own attention and under CSA applied to the same block's q and k.");
    var st = { image: startImage(cfg), layer: (cfg.options.layer || m.layers) - 1,
               patch: cfg.options.patch || [Math.floor(grid[0] / 2), Math.floor(grid[1] / 2)], rows: {}, stats: {}, invariance: {} };
    root.__sclip = st;
    var slider = el("input", { type: "range", min: "1", max: String(m.layers), value: String(st.layer + 1), "data-role": "layer", style: "vertical-align:middle" });
    var layerText = el("span", { "data-role": "layer-text" });
    var chooser = imageChooser(cfg, function (i) { st.image = i; update(); });
    chooser.value = String(st.image);
    root.appendChild(el("div", { style: "margin-bottom:6px" }, [el("span", { text: "image " }), chooser, el("span", { text: "  block " }), slider, layerText]));
    var panels = [panel("image (query patch in cyan)", size)].concat(m.variants.map(function (v, i) { return panel(m.labels[i], size); }));
    root.appendChild(el("div", { style: "display:flex;flex-wrap:wrap" }, panels.map(function (p) { return p.box; })));
    var status = el("div", { "data-role": "status", style: "font-size:12px;color:#555" });
    root.appendChild(status);
    slider.addEventListener("input", function () { st.layer = +slider.value - 1; update(); });
    onPatch(panels.map(function (p) { return p.canvas; }), grid, function (patch) { st.patch = patch; update(); });

    function invariance(a, layer, v) {  // mean pairwise cosine of the patch queries' rows (book.spatial_invariance)
      var base = (layer * m.variants.length + v) * N * L, sum = new Float64Array(L);
      for (var i = 0; i < N; i++) {
        var o = base + i * L, n = 0, j;
        for (j = 0; j < L; j++) n += a[o + j] * a[o + j];
        n = Math.sqrt(n) || 1;
        for (j = 0; j < L; j++) sum[j] += a[o + j] / n;
      }
      var s2 = 0;
      for (var k = 0; k < L; k++) s2 += sum[k] * sum[k];
      return (s2 - N) / (N * (N - 1));  // |sum of unit rows|^2 = N + sum over pairs i != j
    }
    function update() {
      st.ready = false;  // until this state is drawn (tests wait for it)
      var gen = st.generation = (st.generation || 0) + 1;  // only the latest request draws
      var im = m.images[st.image], layer = st.layer, p = st.patch, q = p[0] * grid[1] + p[1];
      layerText.textContent = " " + (layer + 1) + " of " + m.layers + (layer + 1 === m.layers ? " (the last block, the one SCLIP changes)" : "");
      Promise.all([loadImage(cfg.sources[im.image]), loadArray(cfg.sources[im.attention.blob], im.attention.blob)]).then(function (r) {
        if (gen !== st.generation) return;
        var img = r[0], a = r[1];
        var ctx0 = panels[0].ctx;
        ctx0.drawImage(img, 0, 0, panels[0].canvas.width, panels[0].canvas.height);
        ctx0.strokeStyle = "rgba(255,255,255,0.25)"; ctx0.lineWidth = 1;
        for (var g = 1; g < grid[1]; g++) { var x = g * size[1] / grid[1]; ctx0.beginPath(); ctx0.moveTo(x, 0); ctx0.lineTo(x, size[0]); ctx0.stroke(); }
        for (g = 1; g < grid[0]; g++) { var y = g * size[0] / grid[0]; ctx0.beginPath(); ctx0.moveTo(0, y); ctx0.lineTo(size[1], y); ctx0.stroke(); }
        markPatch(panels[0], grid, p);
        panels[0].caption.innerHTML = "";
        panels[0].caption.appendChild(el("span", { "data-role": "patch", text: "query patch: row " + p[0] + ", column " + p[1] }));
        m.variants.forEach(function (v, vi) {
          var o = ((layer * m.variants.length + vi) * N + q) * L, row = a.subarray(o, o + L), patches = row.subarray(1);
          var best = 0, sum = 0;
          for (var j = 0; j < N; j++) { sum += patches[j]; if (patches[j] > patches[best]) best = j; }
          var key = st.image + ":" + layer + ":" + vi;
          if (!(key in st.invariance)) st.invariance[key] = invariance(a, layer, vi);
          var stats = { self: patches[q], max: patches[best], argmax: [Math.floor(best / grid[1]), best % grid[1]], cls: row[0],
                        patchSum: sum, invariance: st.invariance[key] };
          st.rows[v] = Array.prototype.slice.call(row);
          st.stats[v] = stats;
          var lo = Infinity, hi = -Infinity;
          for (j = 0; j < N; j++) { lo = Math.min(lo, patches[j]); hi = Math.max(hi, patches[j]); }
          drawMap(panels[vi + 1], img, patches, grid, "inferno", lo, hi, 0.8);
          markPatch(panels[vi + 1], grid, p);
          var c = panels[vi + 1].caption;
          c.innerHTML = "";
          [["on itself", "self", fmt(stats.self)], ["largest", "max", fmt(stats.max) + " at (" + stats.argmax + ")"],
           ["on CLS", "cls", fmt(stats.cls)], ["spatial invariance of this block", "invariance", fmt(stats.invariance)]].forEach(function (t) {
            c.appendChild(el("div", {}, [el("span", { text: t[0] + ": " }), el("span", { "data-role": v + "-" + t[1], text: t[2] })]));
          });
        });
        st.ready = true;
        status.textContent = "";
      }).catch(function (e) { status.textContent = "error: " + e.message; st.error = e.message; });
    }
    update();
  }

  // -- similarity explorer -----------------------------------------------------------------------
  function parseWords(text) {
    return text.split(/[;,]/).map(function (w) { return w.trim(); }).filter(function (w) { return w.length > 0; });
  }
  function similarityExplorer(root, cfg) {
    var m = cfg.manifest, grid = m.grid, N = grid[0] * grid[1], size = m.size, vocab = m.vocabulary, dim = vocab.shape[1];
    header(root, cfg, "Type a word (suggestions come from a vocabulary of " + vocab.words.length +
      " words): its cosine with every patch, for vanilla CLIP and SCLIP. Several words separated by ';' give the " +
      "argmax segmentation. Hover over a patch to read its values. Text embeddings: prompt " + m.templates.map(JSON.stringify).join(", ") + ".");
    var index = {};
    vocab.words.forEach(function (w, i) { if (!(w.toLowerCase() in index)) index[w.toLowerCase()] = i; });
    var st = { image: startImage(cfg), words: cfg.options.words || "cat", focus: 0,
               patch: cfg.options.patch || [Math.floor(grid[0] / 2), Math.floor(grid[1] / 2)], values: {}, shares: {} };
    root.__sclip = st;
    var chooser = imageChooser(cfg, function (i) { st.image = i; update(); });
    chooser.value = String(st.image);
    var input = el("input", { type: "text", value: st.words, "data-role": "words", autocomplete: "off", spellcheck: "false",
                              style: "width:22em;max-width:100%", "aria-label": "words separated by ;" });
    var suggest = el("div", { "data-role": "suggestions", style: "position:absolute;z-index:10;background:white;border:1px solid #aaa;display:none;font-size:13px;max-height:14em;overflow:auto" });
    var inputBox = el("span", { style: "position:relative;display:inline-block" }, [input, suggest]);
    root.appendChild(el("div", { style: "margin-bottom:6px" }, [el("span", { text: "image " }), chooser, el("span", { text: "  words " }), inputBox]));
    var message = el("div", { "data-role": "message", style: "font-size:12px;color:#b00020;min-height:1.2em" });
    root.appendChild(message);
    var panels = [panel("image", size)].concat(m.variants.map(function (v, i) { return panel(m.labels[i] + ": cosine", size); }));
    root.appendChild(el("div", { style: "display:flex;flex-wrap:wrap" }, panels.map(function (p) { return p.box; })));
    var segPanels = m.variants.map(function (v, i) { return panel(m.labels[i] + ": argmax", size); });
    var segRow = el("div", { style: "display:none;flex-wrap:wrap" }, segPanels.map(function (p) { return p.box; }));
    root.appendChild(segRow);
    var status = el("div", { "data-role": "status", style: "font-size:12px;color:#555" });
    root.appendChild(status);
    onPatch(panels.concat(segPanels).map(function (p) { return p.canvas; }), grid, function (patch) { st.patch = patch; update(); });

    // autocomplete over the vocabulary for the word being typed (the text after the last separator)
    var choices = [], chosen = -1;
    function currentToken() { var v = input.value, i = Math.max(v.lastIndexOf(";"), v.lastIndexOf(",")); return { start: i + 1, text: v.slice(i + 1).trim().toLowerCase() }; }
    function showSuggestions() {
      var t = currentToken().text;
      choices = [];
      if (t) {
        var pre = [], mid = [];
        vocab.words.forEach(function (w) { var l = w.toLowerCase(); if (l.indexOf(t) === 0) pre.push(w); else if (l.indexOf(t) > 0) mid.push(w); });
        choices = pre.concat(mid).slice(0, 8);
        if (choices.length === 1 && choices[0].toLowerCase() === t) choices = [];
      }
      chosen = -1;
      suggest.innerHTML = "";
      choices.forEach(function (w, i) {
        var item = el("div", { "data-role": "suggestion", style: "padding:2px 6px;cursor:pointer", text: w });
        item.addEventListener("mousedown", function (ev) { ev.preventDefault(); accept(i); });
        suggest.appendChild(item);
      });
      suggest.style.display = choices.length ? "block" : "none";
    }
    function highlight() { Array.prototype.forEach.call(suggest.children, function (c, i) { c.style.background = i === chosen ? "#cde" : ""; }); }
    function accept(i) {
      var tok = currentToken(), before = input.value.slice(0, tok.start);
      input.value = before + (before && !/\s$/.test(before) ? " " : "") + choices[i];
      suggest.style.display = "none"; choices = [];
      changed();
    }
    input.addEventListener("keydown", function (ev) {
      if (!choices.length) return;
      if (ev.key === "ArrowDown" || ev.key === "ArrowUp") { chosen = (chosen + (ev.key === "ArrowDown" ? 1 : choices.length - 1)) % choices.length; highlight(); ev.preventDefault(); }
      else if ((ev.key === "Enter" || ev.key === "Tab") && chosen >= 0) { accept(chosen); ev.preventDefault(); }
      else if (ev.key === "Escape") { suggest.style.display = "none"; }
    });
    input.addEventListener("blur", function () { suggest.style.display = "none"; });
    function changed() { st.words = input.value; st.focus = Math.max(0, parseWords(input.value).length - 1); update(); }
    input.addEventListener("input", function () { showSuggestions(); changed(); });

    function cosines(feats, v, t) {  // (variants, dim, N) features . word embedding -> N cosines
      var out = new Float64Array(N), base = v * dim * N;
      for (var c = 0; c < dim; c++) {
        var w = t[c], o = base + c * N;
        for (var i = 0; i < N; i++) out[i] += feats[o + i] * w;
      }
      return out;
    }
    // bilinear upsampling of the class maps to the image (align_corners=False, as torch), then argmax
    function segment(maps) {
      var H = size[0], W = size[1], gh = grid[0], gw = grid[1], labels = new Int32Array(H * W), counts = new Array(maps.length).fill(0);
      function coord(o, n, N_) { var s = Math.max((o + 0.5) * n / N_ - 0.5, 0), i0 = Math.min(Math.floor(s), n - 1); return [i0, Math.min(i0 + 1, n - 1), s - i0]; }
      var ys = [], xs = [];
      for (var y = 0; y < H; y++) ys.push(coord(y, gh, H));
      for (var x = 0; x < W; x++) xs.push(coord(x, gw, W));
      for (y = 0; y < H; y++) {
        var cy = ys[y];
        for (x = 0; x < W; x++) {
          var cx = xs[x], best = -1, bestV = -Infinity;
          for (var k = 0; k < maps.length; k++) {
            var mp = maps[k];
            var top = mp[cy[0] * gw + cx[0]] * (1 - cx[2]) + mp[cy[0] * gw + cx[1]] * cx[2];
            var bot = mp[cy[1] * gw + cx[0]] * (1 - cx[2]) + mp[cy[1] * gw + cx[1]] * cx[2];
            var val = top * (1 - cy[2]) + bot * cy[2];
            if (val > bestV) { bestV = val; best = k; }
          }
          labels[y * W + x] = best; counts[best]++;
        }
      }
      return { labels: labels, shares: counts.map(function (c) { return c / (H * W); }) };
    }
    function drawSegmentation(p, img, labels) {
      var ctx = p.ctx, W = size[1], H = size[0];
      ctx.drawImage(img, 0, 0, W, H);
      var data = ctx.getImageData(0, 0, W, H);
      for (var i = 0; i < labels.length; i++) {
        var c = m.palette[labels[i] % m.palette.length];
        for (var ch = 0; ch < 3; ch++) data.data[4 * i + ch] = Math.round(0.5 * data.data[4 * i + ch] + 0.5 * c[ch]);
      }
      ctx.putImageData(data, 0, 0);
    }
    function update() {
      st.ready = false;
      var gen = st.generation = (st.generation || 0) + 1;
      var im = m.images[st.image], p = st.patch, q = p[0] * grid[1] + p[1];
      var words = parseWords(st.words), unknown = words.filter(function (w) { return !(w.toLowerCase() in index); });
      var known = words.filter(function (w) { return w.toLowerCase() in index; });
      message.textContent = unknown.length ? "not in the vocabulary: " + unknown.join(", ") + " (the explorer knows only the words embedded at build time; " +
        "in a notebook, pass words=[...] to explorer.compute to add yours)" : "";
      Promise.all([loadImage(cfg.sources[im.image]), loadArray(cfg.sources[im.features.blob], im.features.blob),
                   loadArray(cfg.sources[vocab.blob], vocab.blob)]).then(function (r) {
        if (gen !== st.generation) return;
        var img = r[0], feats = r[1], emb = r[2];
        panels[0].ctx.drawImage(img, 0, 0, size[1], size[0]);
        markPatch(panels[0], grid, p);
        panels[0].caption.innerHTML = "";
        panels[0].caption.appendChild(el("span", { "data-role": "patch", text: "patch: row " + p[0] + ", column " + p[1] }));
        st.values = {}; st.shares = {};
        var focus = known.length ? known[Math.min(st.focus, known.length - 1)] : null;
        st.word = focus;
        m.variants.forEach(function (v, vi) {
          var pan = panels[vi + 1], c = pan.caption;
          c.innerHTML = "";
          if (!focus) { pan.ctx.drawImage(img, 0, 0, size[1], size[0]); return; }
          var wi = index[focus.toLowerCase()], t = emb.subarray(wi * dim, (wi + 1) * dim), cos = cosines(feats, vi, t);
          var lo = Infinity, hi = -Infinity;
          for (var i = 0; i < N; i++) { lo = Math.min(lo, cos[i]); hi = Math.max(hi, cos[i]); }
          st.values[v] = { patch: cos[q], min: lo, max: hi, map: Array.prototype.slice.call(cos) };
          drawMap(pan, img, cos, grid, "viridis", lo, hi, 0.85);
          markPatch(pan, grid, p, "red");
          c.appendChild(el("div", {}, [el("span", { text: "'" + focus + "' at the patch: " }), el("span", { "data-role": v + "-cos", text: fmt(cos[q]) })]));
          c.appendChild(el("div", {}, [el("span", { text: "map from " }), el("span", { "data-role": v + "-min", text: fmt(lo) }),
                                       el("span", { text: " to " }), el("span", { "data-role": v + "-max", text: fmt(hi) })]));
        });
        segRow.style.display = known.length >= 2 ? "flex" : "none";
        if (known.length >= 2) {
          m.variants.forEach(function (v, vi) {
            var maps = known.map(function (w) { var wi = index[w.toLowerCase()]; return cosines(feats, vi, emb.subarray(wi * dim, (wi + 1) * dim)); });
            var seg = segment(maps), pan = segPanels[vi];
            st.shares[v] = seg.shares;
            drawSegmentation(pan, img, seg.labels);
            markPatch(pan, grid, p, "white");
            pan.caption.innerHTML = "";
            known.forEach(function (w, k) {
              var c = m.palette[k % m.palette.length];
              var item = el("div", { style: "cursor:pointer", title: "show this word's cosine map" }, [
                el("span", { style: "display:inline-block;width:0.9em;height:0.9em;margin-right:4px;vertical-align:middle;background:rgb(" + c.join(",") + ")" }),
                el("span", { text: w + ": " }), el("span", { "data-role": v + "-share-" + k, text: (100 * seg.shares[k]).toFixed(2) + "%" })]);
              item.addEventListener("click", function () { st.focus = k; update(); });
              pan.caption.appendChild(item);
            });
          });
        }
        st.known = known;
        st.ready = true;
        status.textContent = "";
      }).catch(function (e) { status.textContent = "error: " + e.message; st.error = e.message; });
    }
    update();
  }

  window.SclipExplorer = {
    mount: function (id) {
      var root = document.getElementById(id), cfg = JSON.parse(document.getElementById(id + "-config").textContent);
      root.innerHTML = "";
      root.style.cssText = "font-family:sans-serif;margin:8px 0";
      (cfg.kind === "attention" ? attentionExplorer : similarityExplorer)(root, cfg);
    },
    decodeF16: decodeF16
  };
})();
