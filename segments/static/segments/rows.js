/* Cible's row editor: a list of conditions (or a map of properties) edited as rows of fields, the
 * JSON kept in the form's textarea under "advanced". The columns and their labels come from the
 * server (segments.widgets.RowsEditor), in the user's language. */
(function () {
  "use strict";

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => {
      if (value === undefined || value === null || value === false) { return; }
      if (key === "text") { node.textContent = value; } else if (key.startsWith("on")) { node.addEventListener(key.slice(2), value); } else { node.setAttribute(key, value); }
    });
    (children || []).forEach((child) => { if (child) { node.appendChild(child); } });
    return node;
  }

  class Rows {
    constructor(root) {
      this.root = root;
      // The textarea beside it (an inline row copied from the template keeps the template's data-target).
      this.textarea = root.closest(".cible-rule-field").querySelector("textarea");
      this.spec = JSON.parse(root.dataset.spec);
      this.textarea.addEventListener("input", () => { if (document.activeElement === this.textarea) { this.read(); this.draw(); } });
      this.read();
      this.draw();
    }

    read() {
      let value = null;
      try { value = JSON.parse(this.textarea.value.trim() || "null"); } catch (e) { this.textarea.closest("details").open = true; }
      if (this.spec.mode === "map") {
        this.rows = value && typeof value === "object" && !Array.isArray(value)
          ? Object.entries(value).map(([k, v]) => ({ key: k, value: typeof v === "string" ? v : JSON.stringify(v) })) : [];
      } else {
        this.rows = Array.isArray(value) ? value.map((row) => Object.assign({}, row)) : [];
      }
    }

    write() {
      let out;
      if (this.spec.mode === "map") {
        out = {};
        this.rows.forEach((row) => { if (row.key) { out[row.key] = this.typed(row.value); } });
      } else {
        out = this.rows.map((row) => {
          const item = {};
          this.spec.columns.forEach((c) => {
            const v = row[c.name];
            if (v === undefined || v === "" || v === null) { return; }
            item[c.name] = c.type === "integer" ? Number(v) : v;
          });
          return item;
        });
      }
      this.textarea.value = JSON.stringify(out, null, 2);
    }

    typed(text) {
      if (text === "true") { return true; }
      if (text === "false") { return false; }
      if (text !== "" && !isNaN(Number(text)) && /^-?[0-9.]+$/.test(text)) { return Number(text); }
      return text;
    }

    draw() {
      const t = this.spec.texts;
      this.root.textContent = "";
      const table = el("table", { class: "cible-rows" });
      const head = el("tr", {}, this.spec.columns.map((c) => el("th", { text: c.label })).concat([el("th", {})]));
      table.appendChild(el("thead", {}, [head]));
      const body = el("tbody");
      this.rows.forEach((row, index) => {
        const cells = this.spec.columns.map((c) => {
          const set = (v) => { row[c.name] = v; this.write(); };
          let field;
          if (c.choices) {
            field = el("select", { name: `${this.textarea.id}-${index}-${c.name}`, "aria-label": c.label, onchange: (e) => set(e.target.value) });
            [["", "—"]].concat(c.choices).forEach(([v, label]) => {
              const o = el("option", { value: v, text: label });
              if (String(row[c.name] ?? "") === String(v)) { o.selected = true; }
              field.appendChild(o);
            });
          } else {
            field = el("input", { type: c.type === "integer" ? "number" : "text", name: `${this.textarea.id}-${index}-${c.name}`, "aria-label": c.label, value: row[c.name] ?? "", oninput: (e) => set(e.target.value) });
          }
          return el("td", {}, [field]);
        });
        cells.push(el("td", {}, [el("button", { type: "button", class: "cible-remove", text: "✕", title: t.remove, "aria-label": t.remove, onclick: () => { this.rows.splice(index, 1); this.write(); this.draw(); } })]));
        body.appendChild(el("tr", {}, cells));
      });
      table.appendChild(body);
      this.root.appendChild(table);
      this.root.appendChild(el("button", { type: "button", class: "button cible-add-row", text: "+ " + t.add, onclick: () => {
        const row = {};
        this.spec.columns.forEach((c) => { if (c.default !== undefined) { row[c.name] = c.default; } });
        this.rows.push(row); this.write(); this.draw();
      } }));
    }
  }

  function start(scope) {
    (scope || document).querySelectorAll(".cible-rows-editor").forEach((root) => {
      if (!root._rows && !root.closest(".empty-form")) { root._rows = new Rows(root); }
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", () => start()); } else { start(); }
  document.addEventListener("formset:added", (event) => start(event.target));
})();
