/* Cible's segment builder: rules built by clicking, written back as JSON into the form's textarea.
 *
 * Every text it shows comes from the server's catalogue (segments.vocabulary), in the user's
 * language. A condition it cannot draw is kept as JSON, so the round trip never loses a rule.
 */
(function () {
  "use strict";

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(function ([key, value]) {
      if (value === undefined || value === null || value === false) { return; }
      if (key === "text") { node.textContent = value; } else if (key.startsWith("on")) { node.addEventListener(key.slice(2), value); } else { node.setAttribute(key, value === true ? "" : value); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }

  function canonical(value) {
    if (Array.isArray(value)) { return "[" + value.map(canonical).join(",") + "]"; }
    if (value && typeof value === "object") {
      return "{" + Object.keys(value).sort().map(function (k) { return JSON.stringify(k) + ":" + canonical(value[k]); }).join(",") + "}";
    }
    return JSON.stringify(value);
  }

  function only(object, keys) { return Object.keys(object).every(function (k) { return keys.indexOf(k) >= 0; }); }
  function days(window) { const m = /^P(\d+)D$/.exec(window || ""); return m ? Number(m[1]) : null; }
  function isNumber(v) { return typeof v === "number" && isFinite(v); }
  function splitList(text) { return text.split(",").map(function (s) { return s.trim(); }).filter(Boolean); }
  function numberOrNull(text) { if (text === "" || text === null || text === undefined) { return null; } const n = Number(text); return isFinite(n) ? n : null; }

  let uid = 0;

  class Builder {
    constructor(root) {
      this.root = root;
      // The textarea beside it (an inline row copied from the template keeps the template's data-target).
      this.textarea = root.closest(".cible-rule-field").querySelector("textarea");
      this.catalogue = null;
      this.tree = null;
      this.sequence = 0;
      this.timer = null;
      this.workspaceSelect = document.querySelector("select[name=workspace]");
      if (this.workspaceSelect) {
        this.workspaceSelect.addEventListener("change", () => this.load());
      }
      this.textarea.addEventListener("input", () => this.fromTextarea());
      this.load();
    }

    workspace() { return this.workspaceSelect ? this.workspaceSelect.value : this.root.dataset.workspace; }

    load() {
      const workspace = this.workspace();
      this.root.textContent = "";
      if (!workspace) {
        this.root.appendChild(el("p", { class: "cible-empty", text: this.root.dataset.needsWorkspace }));
        return;
      }
      fetch(this.root.dataset.catalogue + "?workspace=" + encodeURIComponent(workspace), { credentials: "same-origin" })
        .then((r) => r.json())
        .then((data) => {
          if (!data.criteria) { return; }
          const facets = (this.root.dataset.facets || "").split(",").filter(Boolean);
          if (facets.length) {
            data.facets = data.facets.filter((f) => facets.indexOf(f[0]) >= 0);
            data.criteria = data.criteria.filter((c) => facets.indexOf(c.facet) >= 0);
          }
          this.catalogue = data;
          this.byId = {};
          data.criteria.forEach((c) => { this.byId[c.id] = c; });
          this.texts = data.texts;
          this.parseTextarea();
          this.render();
        });
    }

    parseTextarea() {
      const text = this.textarea.value.trim();
      let definition = null;
      if (text && text !== "null") {
        try { definition = JSON.parse(text); } catch (e) { this.textarea.closest("details").open = true; definition = null; }
      }
      this.tree = definition === null ? this.group("all") : this.fromJSON(definition);
      if (this.tree.type !== "group") { this.tree = { type: "group", mode: "all", negate: false, children: [this.tree] }; }
    }

    fromTextarea() {
      if (document.activeElement !== this.textarea || !this.catalogue) { return; }
      try { JSON.parse(this.textarea.value.trim() || "null"); } catch (e) { this.count(); return; }
      this.parseTextarea();
      this.render(false);
    }

    group(mode) { return { type: "group", mode: mode, negate: false, children: [] }; }

    // --- JSON -> tree ------------------------------------------------------------------------
    fromJSON(node) {
      if (node && typeof node === "object" && !Array.isArray(node)) {
        for (const mode of ["all", "any"]) {
          if (Array.isArray(node[mode]) && only(node, [mode])) {
            return { type: "group", mode: mode, negate: false, children: node[mode].map((child) => this.fromJSON(child)) };
          }
        }
        if ("not" in node && only(node, ["not"])) {
          const inner = this.fromJSON(node.not);
          if (inner.type !== "raw" && !inner.negate) { inner.negate = true; return inner; }
          return { type: "raw", json: node, negate: false };
        }
        const cond = this.leaf(node);
        if (cond) { return cond; }
      }
      return { type: "raw", json: node, negate: false };
    }

    leaf(node) {
      const cond = (crit, data) => ({ type: "cond", crit: crit, data: data, negate: false });
      if ("field" in node && only(node, ["field", "op", "value"])) {
        const c = this.byId["field:" + node.field];
        if (c && c.ops.some((o) => o[0] === node.op) && this.valueFits(c, node.op, node.value)) {
          return cond(c.id, { op: node.op, value: node.value });
        }
        return null;
      }
      if ("event" in node && only(node, ["event", "channel", "within", "count", "properties"])) {
        const count = node.count;
        const props = node.properties;
        if ((node.within === undefined || days(node.within) !== null) &&
            (count === undefined || (only(count, ["gte"]) && isNumber(count.gte))) &&
            (props === undefined || (Object.keys(props).length === 1 && typeof Object.values(props)[0] === "string"))) {
          return cond("event", {
            event: node.event, channel: node.channel || "", days: days(node.within), times: count ? count.gte : null,
            propKey: props ? Object.keys(props)[0] : "", propValue: props ? Object.values(props)[0] : "",
          });
        }
        return null;
      }
      if ("orders" in node && only(node, ["orders"]) && node.orders && typeof node.orders === "object" && node.orders.items) {
        const o = node.orders;
        const items = o.items;
        const key = items && typeof items === "object" ? Object.keys(items)[0] : null;
        if (this.byId.items && only(o, ["items", "within"]) && (o.within === undefined || days(o.within) !== null) &&
            Object.keys(items).length === 1 && ["category", "sku"].indexOf(key) >= 0 && typeof items[key] === "string") {
          return cond("items", { key: key, value: items[key], days: days(o.within) });
        }
        return null;
      }
      if ("orders" in node && only(node, ["orders"]) && node.orders && typeof node.orders === "object") {
        const o = node.orders;
        const gte = (x) => x === undefined || (only(x, ["gte"]) && isNumber(x.gte));
        if (only(o, ["within", "count", "amount_sum", "channel"]) && (o.within === undefined || days(o.within) !== null) && gte(o.count) && gte(o.amount_sum)) {
          return cond("orders", { days: days(o.within), count: o.count ? o.count.gte : null, amount: o.amount_sum ? o.amount_sum.gte : null, channel: o.channel || "" });
        }
        return null;
      }
      if ("consent" in node && only(node, ["consent"]) && node.consent && only(node.consent, ["purpose", "channel"])) {
        return cond("consent", { purpose: node.consent.purpose, channel: node.consent.channel || "" });
      }
      if ("segment" in node && only(node, ["segment"]) && this.byId.segment &&
          this.byId.segment.choices.some((choice) => choice[0] === String(node.segment))) {
        return cond("segment", { segment: String(node.segment) });
      }
      if ("geo" in node && only(node, ["geo"]) && node.geo && Array.isArray(node.geo.near)) {
        return cond("geo", { lat: node.geo.near[0], lng: node.geo.near[1], km: node.geo.km });
      }
      if ("survey" in node && only(node, ["survey", "question", "op", "value"]) && this.byId.survey) {
        const known = this.byId.survey.questions.some((q) => q[0] === node.survey && q[1] === node.question);
        if (known && ["string", "number", "boolean"].indexOf(typeof node.value) >= 0) {
          return cond("survey", { question: node.survey + "/" + node.question, op: node.op, value: node.value });
        }
        return null;
      }
      for (const c of this.catalogue.criteria) {
        if (c.node === "family" && c.key in node) {
          const found = c.choices.find((choice) => canonical(JSON.parse(choice[0])) === canonical(node));
          if (found) { return cond(c.id, { choice: found[0] }); }
        }
      }
      return null;
    }

    valueFits(c, op, value) {
      if (op === "is_set") { return typeof value === "boolean"; }
      if (op === "between") { return Array.isArray(value) && value.length === 2; }
      if (["in", "not_in", "contains_any", "contains_all"].indexOf(op) >= 0) { return Array.isArray(value) && value.every((v) => typeof v === "string" || isNumber(v)); }
      if (op === "starts_with") { return typeof value === "string" || (Array.isArray(value) && value.every((v) => typeof v === "string")); }
      return typeof value === "string" || isNumber(value) || typeof value === "boolean";
    }

    // --- tree -> JSON ------------------------------------------------------------------------
    toJSON(node) {
      let out = null;
      if (node.type === "group") {
        const children = node.children.map((child) => this.toJSON(child)).filter((child) => child !== null);
        if (!children.length) { return null; }
        out = children.length === 1 && node.negate ? children[0] : { [node.mode]: children };
      } else if (node.type === "raw") {
        out = node.json;
      } else {
        out = this.leafJSON(node);
      }
      if (out === null) { return null; }
      return node.negate ? { not: out } : out;
    }

    leafJSON(node) {
      const c = this.byId[node.crit];
      const d = node.data;
      if (!c) { return null; }
      if (c.node === "field") { return d.op ? { field: c.field, op: d.op, value: d.value } : null; }
      if (c.node === "event") {
        if (!d.event) { return null; }
        const out = { event: d.event };
        if (d.channel) { out.channel = d.channel; }
        if (d.propKey && d.propValue) { out.properties = { [d.propKey]: d.propValue }; }
        if (d.days) { out.within = "P" + d.days + "D"; }
        if (d.times) { out.count = { gte: d.times }; }
        return out;
      }
      if (c.node === "orders") {
        const spec = {};
        if (d.days) { spec.within = "P" + d.days + "D"; }
        if (d.channel) { spec.channel = d.channel; }
        if (d.count) { spec.count = { gte: d.count }; }
        if (d.amount) { spec.amount_sum = { gte: d.amount }; }
        return { orders: spec };
      }
      if (c.node === "items") {
        if (!d.value) { return null; }
        const spec = { items: { [d.key || "category"]: d.value } };
        if (d.days) { spec.within = "P" + d.days + "D"; }
        return { orders: spec };
      }
      if (c.node === "consent") {
        if (!d.purpose) { return null; }
        return { consent: d.channel ? { purpose: d.purpose, channel: d.channel } : { purpose: d.purpose } };
      }
      if (c.node === "segment") { return d.segment ? { segment: Number(d.segment) } : null; }
      if (c.node === "geo") { return { geo: { near: [d.lat, d.lng], km: d.km } }; }
      if (c.node === "survey") {
        if (!d.question || !d.op) { return null; }
        const [survey, question] = d.question.split("/");
        return { survey: survey, question: question, op: d.op, value: d.value };
      }
      if (c.node === "family") { return d.choice ? JSON.parse(d.choice) : null; }
      return null;
    }

    // --- drawing -----------------------------------------------------------------------------
    render(write) {
      this.root.textContent = "";
      this.root.appendChild(this.drawGroup(this.tree, null));
      this.status = el("div", { class: "cible-builder-status", "aria-live": "polite" });
      if (this.root.dataset.count) { this.root.appendChild(this.status); }
      if (write !== false) { this.write(); } else { this.count(); }
    }

    write() {
      const definition = this.toJSON(this.tree);
      this.textarea.value = definition === null ? "" : JSON.stringify(definition, null, 2);
      this.count();
    }

    changed() { this.write(); }

    redraw() { this.render(); }

    select(options, value, onchange, extra) {
      const s = el("select", Object.assign({ onchange: (e) => onchange(e.target.value) }, extra || {}));
      options.forEach(([v, label]) => {
        const option = el("option", { value: v, text: label });
        if (String(v) === String(value)) { option.selected = true; }
        s.appendChild(option);
      });
      return s;
    }

    input(type, value, onchange, extra) {
      return el("input", Object.assign({ type: type, value: value === null || value === undefined ? "" : value, oninput: (e) => onchange(e.target.value) }, extra || {}));
    }

    drawGroup(group, parent) {
      const t = this.texts;
      const box = el("div", { class: "cible-group" + (parent ? " cible-nested" : ""), "data-mode": group.mode });
      const head = el("div", { class: "cible-group-head" });
      const negate = el("label", { class: "cible-negate" }, [
        el("input", { type: "checkbox", checked: group.negate, onchange: (e) => { group.negate = e.target.checked; this.changed(); } }),
        document.createTextNode(" " + t.exclude),
      ]);
      head.appendChild(el("span", { text: t.match + " " }));
      head.appendChild(this.select([["all", t.all], ["any", t.any]], group.mode, (v) => { group.mode = v; box.dataset.mode = v; this.changed(); }, { class: "cible-mode", "aria-label": t.match }));
      head.appendChild(negate);
      if (parent) {
        head.appendChild(el("button", { type: "button", class: "cible-remove", text: "✕", title: t.remove, "aria-label": t.remove, onclick: () => { parent.children.splice(parent.children.indexOf(group), 1); this.redraw(); } }));
      }
      box.appendChild(head);
      const list = el("div", { class: "cible-children" });
      group.children.forEach((child) => {
        list.appendChild(child.type === "group" ? this.drawGroup(child, group) : this.drawCondition(child, group));
      });
      box.appendChild(list);
      if (!group.children.length && !parent) { list.appendChild(el("p", { class: "cible-empty", text: t.empty })); }
      box.appendChild(el("div", { class: "cible-actions" }, [
        el("button", { type: "button", class: "button cible-add", text: "+ " + t.add_condition, onclick: () => { group.children.push({ type: "cond", crit: "", data: {}, negate: false }); this.redraw(); } }),
        el("button", { type: "button", class: "button cible-add-group", text: "+ " + t.add_group, onclick: () => { group.children.push(this.group(group.mode === "all" ? "any" : "all")); this.redraw(); } }),
      ]));
      return box;
    }

    criterionSelect(cond) {
      const s = el("select", { class: "cible-criterion", "aria-label": this.texts.choose, onchange: (e) => { cond.crit = e.target.value; cond.data = this.defaults(this.byId[cond.crit]); this.redraw(); } });
      s.appendChild(el("option", { value: "", text: this.texts.choose }));
      this.catalogue.facets.forEach(([facet, label]) => {
        const group = el("optgroup", { label: label });
        this.catalogue.criteria.filter((c) => c.facet === facet).forEach((c) => {
          const option = el("option", { value: c.id, text: c.label });
          if (c.id === cond.crit) { option.selected = true; }
          group.appendChild(option);
        });
        if (group.children.length) { s.appendChild(group); }
      });
      return s;
    }

    defaults(c) {
      if (!c) { return {}; }
      if (c.node === "field") { return { op: c.ops[0][0], value: c.type === "number" && c.ops[0][0] === "between" ? [null, null] : this.emptyValue(c, c.ops[0][0]) }; }
      if (c.node === "event") { return { event: "", channel: "", days: 30, times: null, propKey: "", propValue: "" }; }
      if (c.node === "orders") { return { days: 365, count: 1, amount: null, channel: "" }; }
      if (c.node === "items") { return { key: "category", value: "", days: 365 }; }
      if (c.node === "consent") { return { purpose: this.catalogue.purposes[0][0], channel: "" }; }
      if (c.node === "segment") { return { segment: c.choices[0][0] }; }
      if (c.node === "geo") { return { lat: 48.8566, lng: 2.3522, km: 10 }; }
      if (c.node === "survey") { return { question: c.questions[0][0] + "/" + c.questions[0][1], op: c.ops[0][0], value: "" }; }
      if (c.node === "family") { return { choice: c.choices[0][0] }; }
      return {};
    }

    emptyValue(c, op) {
      if (op === "is_set") { return true; }
      if (op === "between") { return [null, null]; }
      if (["in", "not_in", "contains_any", "contains_all"].indexOf(op) >= 0) { return []; }
      if (c.type === "boolean") { return true; }
      if (c.choices && (op === "eq" || op === "ne")) { return c.choices[0][0]; }
      return c.type === "number" ? null : "";
    }

    drawCondition(cond, parent) {
      const t = this.texts;
      const row = el("div", { class: "cible-condition" });
      row.appendChild(el("label", { class: "cible-negate" }, [
        el("input", { type: "checkbox", checked: cond.negate, onchange: (e) => { cond.negate = e.target.checked; this.changed(); } }),
        document.createTextNode(" " + t.exclude),
      ]));
      if (cond.type === "raw") {
        row.appendChild(el("span", { class: "cible-raw-label", text: t.raw }));
        const area = el("textarea", { class: "cible-raw", rows: 2, cols: 60 });
        area.value = JSON.stringify(cond.json);
        area.addEventListener("input", () => { try { cond.json = JSON.parse(area.value); area.classList.remove("cible-bad"); this.changed(); } catch (e) { area.classList.add("cible-bad"); } });
        row.appendChild(area);
      } else {
        row.appendChild(this.criterionSelect(cond));
        const c = this.byId[cond.crit];
        if (c) { row.appendChild(this.drawValue(c, cond)); }
      }
      row.appendChild(el("button", { type: "button", class: "cible-remove", text: "✕", title: t.remove, "aria-label": t.remove, onclick: () => { parent.children.splice(parent.children.indexOf(cond), 1); this.redraw(); } }));
      return row;
    }

    drawValue(c, cond) {
      const d = cond.data;
      const t = this.texts;
      const span = el("span", { class: "cible-value" });
      const set = (key) => (value) => { d[key] = value; this.changed(); };
      const num = (key) => (value) => { d[key] = numberOrNull(value); this.changed(); };
      if (c.node === "field") {
        span.appendChild(this.select(c.ops, d.op, (op) => { d.op = op; d.value = this.emptyValue(c, op); this.redraw(); }, { class: "cible-op" }));
        span.appendChild(this.fieldValue(c, d));
      } else if (c.node === "event") {
        span.appendChild(this.select([["", "—"], ["any", "*"]].concat(this.catalogue.event_types), d.event, set("event"), { class: "cible-event" }));
        span.appendChild(this.select([["", t.any_channel]].concat(this.catalogue.channels), d.channel, set("channel"), { class: "cible-channel" }));
        span.appendChild(el("label", { text: t.within_days + " " }, [this.input("number", d.days, num("days"), { min: 1, max: 3660, class: "cible-days" })]));
        span.appendChild(el("label", { text: t.at_least_times + " " }, [this.input("number", d.times, num("times"), { min: 1, class: "cible-times" })]));
      } else if (c.node === "orders") {
        span.appendChild(el("label", { text: t.orders_count + " " }, [this.input("number", d.count, num("count"), { min: 1, class: "cible-count" })]));
        span.appendChild(el("label", { text: t.amount_sum + " " }, [this.input("number", d.amount, num("amount"), { min: 0, step: "0.01", class: "cible-amount" })]));
        span.appendChild(el("label", { text: t.within_days + " " }, [this.input("number", d.days, num("days"), { min: 1, max: 3660, class: "cible-days" })]));
        span.appendChild(this.select([["", t.any_channel]].concat(this.catalogue.channels), d.channel, set("channel"), { class: "cible-channel" }));
      } else if (c.node === "items") {
        span.appendChild(this.select(c.keys, d.key, (v) => { d.key = v; this.changed(); }, { class: "cible-item-key" }));
        const listId = "cible-values-" + (++uid);
        const datalist = el("datalist", { id: listId });
        const field = this.input("text", d.value, (v) => { d.value = v; this.changed(); this.suggest("item." + (d.key || "category"), v, false, datalist); }, { class: "cible-input cible-item", list: listId, autocomplete: "off" });
        field.addEventListener("focus", () => this.suggest("item." + (d.key || "category"), field.value, false, datalist));
        span.appendChild(field);
        span.appendChild(datalist);
        span.appendChild(el("label", { text: t.within_days + " " }, [this.input("number", d.days, num("days"), { min: 1, max: 3660, class: "cible-days" })]));
      } else if (c.node === "consent") {
        span.appendChild(this.select(this.catalogue.purposes, d.purpose, set("purpose"), { class: "cible-purpose" }));
        span.appendChild(this.select([["", t.any_channel]].concat(this.catalogue.channels), d.channel, set("channel"), { class: "cible-channel" }));
      } else if (c.node === "segment" || c.node === "family") {
        const key = c.node === "segment" ? "segment" : "choice";
        span.appendChild(this.select(c.choices, d[key], set(key), { class: "cible-choice" }));
      } else if (c.node === "geo") {
        span.appendChild(this.input("number", d.km, num("km"), { min: 0, step: "any", class: "cible-km" }));
        span.appendChild(el("span", { text: " " + t.near_km + " " }));
        span.appendChild(this.input("number", d.lat, num("lat"), { step: "any", "aria-label": t.latitude, class: "cible-lat" }));
        span.appendChild(this.input("number", d.lng, num("lng"), { step: "any", "aria-label": t.longitude, class: "cible-lng" }));
      } else if (c.node === "survey") {
        span.appendChild(this.select(c.questions.map((q) => [q[0] + "/" + q[1], q[2]]), d.question, (v) => { d.question = v; this.redraw(); }, { class: "cible-question" }));
        span.appendChild(this.select(c.ops, d.op, set("op"), { class: "cible-op" }));
        const q = c.questions.find((q) => q[0] + "/" + q[1] === d.question);
        if (q && q[3].length) {
          span.appendChild(this.select([["", "—"]].concat(q[3].map((o) => [String(o), String(o)])), d.value, set("value"), { class: "cible-answer" }));
        } else {
          span.appendChild(this.input("text", d.value, (v) => { d.value = numberOrNull(v) === null ? v : Number(v); this.changed(); }, { class: "cible-answer" }));
        }
      }
      return span;
    }

    fieldValue(c, d) {
      const t = this.texts;
      const op = d.op;
      if (op === "is_set") {
        return this.select([["true", t.yes], ["false", t.no]], String(d.value), (v) => { d.value = v === "true"; this.changed(); }, { class: "cible-input" });
      }
      if (c.type === "boolean") {
        return this.select([["true", t.yes], ["false", t.no]], String(d.value), (v) => { d.value = v === "true"; this.changed(); }, { class: "cible-input" });
      }
      const inputType = c.type === "number" ? "number" : c.type === "date" ? "date" : "text";
      const parse = (v) => (c.type === "number" ? numberOrNull(v) : v);
      if (op === "between") {
        const value = Array.isArray(d.value) ? d.value : [null, null];
        const box = el("span", {});
        box.appendChild(this.input(inputType, value[0], (v) => { value[0] = parse(v); d.value = value; this.changed(); }, { class: "cible-input cible-low", step: "any" }));
        box.appendChild(el("span", { text: " " + t.and + " " }));
        box.appendChild(this.input(inputType, value[1], (v) => { value[1] = parse(v); d.value = value; this.changed(); }, { class: "cible-input cible-high", step: "any" }));
        return box;
      }
      const multiple = ["in", "not_in", "contains_any", "contains_all"].indexOf(op) >= 0;
      if (c.choices) {
        if (multiple) {
          const s = el("select", { multiple: true, class: "cible-input", size: Math.min(6, c.choices.length), onchange: (e) => { d.value = Array.from(e.target.selectedOptions).map((o) => o.value); this.changed(); } });
          c.choices.forEach(([v, label]) => { const o = el("option", { value: v, text: label }); o.selected = (d.value || []).indexOf(v) >= 0; s.appendChild(o); });
          return s;
        }
        return this.select(c.choices, d.value, (v) => { d.value = v; this.changed(); }, { class: "cible-input" });
      }
      const listId = "cible-values-" + (++uid);
      const shown = Array.isArray(d.value) ? d.value.join(", ") : d.value;
      const box = el("span", {});
      const field = this.input(inputType, shown, (v) => {
        if (multiple || (op === "starts_with" && v.indexOf(",") >= 0)) { d.value = splitList(v).map(parse); } else { d.value = parse(v); }
        this.changed();
        if (c.suggest) { this.suggest(c.suggest, v, multiple, datalist); }
      }, { class: "cible-input", list: c.suggest ? listId : null, step: "any", autocomplete: "off", title: multiple ? t.separate : null, placeholder: multiple ? t.separate : null });
      const datalist = el("datalist", { id: listId });
      box.appendChild(field);
      box.appendChild(datalist);
      if (c.suggest) { field.addEventListener("focus", () => this.suggest(c.suggest, field.value, multiple, datalist)); }
      return box;
    }

    suggest(fieldName, typed, multiple, datalist) {
      const parts = multiple ? typed.split(",") : [typed];
      const last = parts.pop().trim();
      const before = parts.map((p) => p.trim()).filter(Boolean);
      clearTimeout(datalist._timer);
      datalist._timer = setTimeout(() => {
        const url = this.root.dataset.values + "?workspace=" + encodeURIComponent(this.workspace()) + "&field=" + encodeURIComponent(fieldName) + "&q=" + encodeURIComponent(last);
        fetch(url, { credentials: "same-origin" }).then((r) => r.json()).then((data) => {
          datalist.textContent = "";
          (data.values || []).forEach((item) => {
            const value = before.concat([item.value]).join(", ");
            datalist.appendChild(el("option", { value: value, label: item.value + " (" + item.count.toLocaleString() + ")" }));
          });
        });
      }, 120);
    }

    // --- the live count ----------------------------------------------------------------------
    count() {
      if (!this.root.dataset.count || !this.status) { return; }
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.ask(), 250);
    }

    ask() {
      const t = this.texts;
      const sequence = ++this.sequence;
      let definition;
      try { definition = JSON.parse(this.textarea.value.trim() || "null"); } catch (e) { this.show({ errors: [t.invalid_json + " " + e.message] }, false, sequence); return; }
      const csrf = document.querySelector("input[name=csrfmiddlewaretoken]");
      const post = (mode) => fetch(this.root.dataset.preview, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.value : "" },
        body: JSON.stringify({ workspace: this.workspace(), definition: definition, mode: mode }),
      }).then((r) => r.json().then((data) => this.show(data, r.ok, sequence)));
      this.status.classList.add("cible-counting");
      this.exactShown = false;
      post("estimate").then(() => { if (!this.exactShown && sequence === this.sequence) { return post("exact"); } return null; });
    }

    show(data, ok, sequence) {
      if (sequence !== this.sequence) { return; }
      if (data.estimate && this.exactShown) { return; }
      const t = this.texts;
      const out = this.status;
      out.textContent = "";
      if (!ok) {
        const list = el("ul", { class: "errorlist" });
        (data.errors || ["?"]).forEach((message) => list.appendChild(el("li", { text: message })));
        out.appendChild(list);
        out.classList.remove("cible-counting");
        return;
      }
      if (data.sentence) { out.appendChild(el("p", { class: "cible-sentence", text: data.sentence })); }
      const share = data.share === null || data.share === undefined ? "-" : (data.share * 100).toLocaleString(undefined, { maximumFractionDigits: 1 }) + " %";
      if (data.estimate) {
        out.appendChild(el("p", { class: "cible-count cible-estimate", id: "cible-preview-estimate" }, [
          el("strong", { text: "≈ " + data.count.toLocaleString() + " " + t.people }),
          document.createTextNode(" (" + data.low.toLocaleString() + " – " + data.high.toLocaleString() + ", " + share + " " + t.of + " " + data.base.toLocaleString() + ") · " + t.estimate),
        ]));
        out.appendChild(el("p", { class: "cible-pending", text: t.counting }));
      } else {
        this.exactShown = true;
        out.classList.remove("cible-counting");
        out.appendChild(el("p", { class: "cible-count" }, [
          el("strong", { id: "cible-preview-count", text: data.count.toLocaleString() + " " + t.people }),
          document.createTextNode(" (" + share + " " + t.of + " " + data.base.toLocaleString() + ") · " + t.exact),
        ]));
        if (data.sample && data.sample.length) { out.appendChild(el("p", { class: "cible-sample", text: t.for_example + " " + data.sample.join(", ") })); }
      }
      if (data.hints && data.hints.length) {
        const list = el("ul", { class: "cible-hints" });
        data.hints.forEach((hint) => list.appendChild(el("li", { text: hint })));
        out.appendChild(list);
      }
    }
  }

  function start(scope) {
    (scope || document).querySelectorAll(".cible-builder").forEach((root) => {
      // The admin's hidden template row of an inline is copied, not used.
      if (!root._builder && !root.closest(".empty-form")) { root._builder = new Builder(root); }
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", () => start()); } else { start(); }
  // A row added to an inline ("Add another target") gets its own builder.
  document.addEventListener("formset:added", (event) => start(event.target));
})();
