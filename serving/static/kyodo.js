// kyodo.js: helpers shared by the task pages (served at /ui/assets/kyodo.js).
// Load it at the end of <body>, before the page's own script. Everything is on window.Kyodo;
// page-specific behaviour (task name, what to reload after login, what to reset on logout)
// is passed in, see Kyodo.makeLogin.
"use strict";
window.Kyodo = (function () {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const KEY_STORE = "kyodo.apiKey";
  const STATUS_TEXT = {
    400: "リクエストが正しくありません", 401: "APIキーが正しくありません",
    403: "この操作は許可されていません", 404: "見つかりません",
    413: "データが大きすぎます", 415: "ファイル形式が正しくありません",
    422: "入力内容に誤りがあります", 503: "サービスの準備ができていません",
  };

  const $ = (id) => document.getElementById(id);

  // ---- DOM helpers: all text goes through textContent, never innerHTML ----
  function setAttrs(node, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "className") node.setAttribute("class", v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, String(v));
    }
  }
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  // ---- number formatting (missing or non-numeric values show as "—") ----
  const nf = new Intl.NumberFormat("ja-JP");
  const nf1 = new Intl.NumberFormat("ja-JP", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const missing = (v) => v === null || v === undefined || v === "" || !Number.isFinite(Number(v));
  const int = (v) => (missing(v) ? "—" : nf.format(Math.round(Number(v))));
  const pct = (v) => (missing(v) ? "—" : (Number(v) * 100).toFixed(1) + "%");

  // ---- alerts (#alert, #alert-message, #alert-close) ----
  function showAlert(message, kind) {
    $("alert").className = "alert " + (kind || "error");
    $("alert").setAttribute("role", kind === "info" ? "status" : "alert");
    $("alert-message").textContent = message;
    $("alert").hidden = false;
  }
  function hideAlert() { $("alert").hidden = true; $("alert-message").textContent = ""; }
  function fail(err) { showAlert(err && err.message ? err.message : String(err), "error"); }

  // ---- API: fetch with the tenant's key; errors become ApiError with a Japanese heading ----
  const session = { key: "", tenant: null };
  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  /** fetch `path` with the API key; resolves to the Response when it is ok, else throws ApiError. */
  async function request(path, options) {
    const opts = Object.assign({}, options || {});
    opts.headers = Object.assign({}, opts.headers || {}, { Authorization: "Bearer " + session.key });
    let res;
    try {
      res = await fetch(path, opts);
    } catch (e) {
      throw new ApiError(0, "サーバーに接続できません。ネットワークを確認してください。");
    }
    if (!res.ok) {
      const body = await readBody(res);
      const head = STATUS_TEXT[res.status] || (res.status >= 500 ? "サーバーでエラーが発生しました" : "エラーが発生しました");
      const detail = body && typeof body === "object" && body.error ? String(body.error)
        : (typeof body === "string" && body ? body.slice(0, 300) : "");
      throw new ApiError(res.status, head + "（HTTP " + res.status + "）" + (detail ? "\n詳細: " + detail : ""));
    }
    return res;
  }
  async function readBody(res) {
    const ctype = res.headers.get("content-type") || "";
    try { return ctype.includes("json") ? await res.json() : await res.text(); } catch (e) { return null; }
  }
  /** like request(), but resolves to the parsed JSON (or text) body. */
  async function api(path, options) { return readBody(await request(path, options)); }

  // ---- downloads ----
  function saveBlob(blob, filename) {
    const a = el("a", { href: URL.createObjectURL(blob), download: filename });
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  // ---- the file picker (#csv-file and its #file-name label) ----
  function bindFilePicker(inputId, nameId) {
    $(inputId).addEventListener("change", () => {
      const f = $(inputId).files[0];
      $(nameId).textContent = f ? f.name + "（" + nf.format(Math.ceil(f.size / 1024)) + " KB）" : "選択されていません";
    });
  }

  // ---- API key: #key-form, #api-key, #logout, #tenant-name; the key lives in sessionStorage ----
  /**
   * Wire the key form for a page. task: the task the tenant must subscribe to; label: its Japanese
   * name; onLogin(who): awaited after a login of a tenant that subscribes to it (the page's own
   * loads); onLogout(): reset the page's own state (the alert is hidden after it). Returns
   * {login, requireKey, resume}.
   */
  /**
   * The key form's own events, shared by every login flavour: submit logs in with the typed key,
   * logout forgets the key (reset(): the flavour's state, then onLogout()). Returns resume(): log
   * in again with a key saved earlier in this tab, if there is one.
   */
  function wireKeyForm(login, reset, onLogout) {
    $("key-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      hideAlert();
      const key = $("api-key").value.trim();
      if (!key) { showAlert("APIキーを入力してください。"); return; }
      await login(key, false);
    });
    $("logout").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORE);
      session.key = ""; $("api-key").value = "";
      reset();
      if (onLogout) onLogout();
      hideAlert();
    });
    return function resume() {
      const saved = sessionStorage.getItem(KEY_STORE);
      if (saved) { $("api-key").value = saved; login(saved, true); }
    };
  }

  /** Who /v1/whoami says the key is, for the header: 糸島市（402303）, 運営者（全団体）. */
  function accountLabel(who) {
    return who.role === "admin" ? who.name + "（全団体）" : who.name + "（" + who.code + "）";
  }
  // the operator's key on a task page: it reads the platform pages, calls no task route
  const ADMIN_ON_TASK = "運営者のキーでは業務ページは使えません。自治体のAPIキーを入力してください"
    + "（運営者は費用按分・運用状況のページを使えます）。";

  function makeLogin({ task, label, onLogin, onLogout }) {
    function setLoggedIn(tenant) {
      session.tenant = tenant;
      $("tenant-name").textContent = tenant ? accountLabel(tenant) : "未ログイン";
      $("logout").hidden = !tenant;
    }
    /** Why `who` may not use this page (the operator, a non-subscriber), else null. */
    const refusal = (who) => (who.role === "admin" ? ADMIN_ON_TASK
      : (who.tasks || []).includes(task) ? null
        : who.name + " は" + label + "（" + task + "）を契約していません。");
    async function login(key, quiet) {
      session.key = key;
      let who;
      try {
        who = await api("/v1/whoami");
        sessionStorage.setItem(KEY_STORE, key);
        setLoggedIn(who);
        // the operator and a non-subscriber are told why, and the page calls none of its
        // routes for them (each would refuse the key: 401, 403)
        const why = refusal(who);
        if (why) { showAlert(why, "error"); return true; }
        if (!quiet) showAlert(who.name + " としてログインしました。", "info");
      } catch (err) {
        session.key = "";
        sessionStorage.removeItem(KEY_STORE);
        setLoggedIn(null);
        fail(err);
        return false;
      }
      if (onLogin) await onLogin(who);
      return true;
    }
    /** Whether the page may call its routes now; else says why (no key, operator, not subscribed). */
    function requireKey() {
      const why = session.key && session.tenant ? refusal(session.tenant)
        : "先にAPIキーを入力して「保存」を押してください。";
      if (why) showAlert(why);
      return !why;
    }
    const resume = wireKeyForm(login, () => setLoggedIn(null), onLogout);
    return { login, requireKey, resume };
  }

  // the alert's close button; this script runs after the page's markup
  $("alert-close").addEventListener("click", hideAlert);

  return {
    $, el, svg, clear, nf, nf1, missing, int, pct,
    showAlert, hideAlert, fail,
    session, ApiError, request, api, saveBlob, bindFilePicker, makeLogin, wireKeyForm, KEY_STORE,
    accountLabel,
  };
})();

// ---- helpers of the platform pages (costs, operations): a key that may be a municipality's
// or the operator's, task and metric names, labelled tables, the champion history ----
Object.assign(window.Kyodo, (function (K) {
  const { $, el, clear, api, showAlert, fail, session, ApiError, wireKeyForm, KEY_STORE,
          accountLabel } = K;
  // task name -> Japanese label: the service fills in configs/platform.yaml's `tasks` here
  const TASK_JA = {/*kyodo:task-labels*/};
  const METRIC_JA = {
    recovered_points_at_5pct_capacity: "点検5%で見つかる誤り点数",
    mean_recovered_points_1_to_5pct_capacity: "点検1〜5%で見つかる誤り点数の平均",
    additional_attendees_at_default_budget: "既定予算での受診者増",
    mean_true_p_improve_or_maintain_recommended: "推奨プランの改善・維持確率",
    tile_crack_f1: "ひび割れ検出F1",
  };
  const taskJa = (t) => TASK_JA[t] || t;
  const metricJa = (m) => (m ? (METRIC_JA[m] || m) : "—");

  /** Fill a <table>: head [[label, numeric]], rows [[cell, numeric]] or {cells, attrs}. */
  function fillTable(table, head, rows, caption) {
    clear(table);
    if (caption) table.append(el("caption", null, caption));
    table.append(el("thead", null, el("tr", null, ...head.map(([h, num]) =>
      el("th", { scope: "col", className: num ? "num" : null }, h)))));
    const body = el("tbody");
    for (const row of rows) {
      const cells = Array.isArray(row) ? row : row.cells;
      body.append(el("tr", Array.isArray(row) ? null : row.attrs, ...cells.map(([v, num]) =>
        el("td", { className: num ? "num" : null }, v))));
    }
    table.append(body);
  }

  // what the promotion gate found for a forced promotion (`kyodo promote --force`)
  const GATE_JA = { ties: "指標が同値", trails: "指標が下回る", beats: "指標が上回る",
                    "no champion": "現行版なし", "not compared": "比較不能" };

  /** One line of a task's champion history: version, promotion (forced: with the gate's
   *  finding and the reason), or rollback, when, by whom. */
  function historyText(h) {
    const when = (h.at || "").replace("T", " ").slice(0, 16);
    const f = h.forced;
    const what = h.rollback_of ? "ロールバック（v" + h.rollback_of + " から）"
      : f ? "強制昇格（" + (GATE_JA[f.gate] || f.gate) + "、理由: " + f.reason + "）" : "昇格";
    return "v" + h.version + " " + what + " " + when + "（" + (h.by || "—") + "）";
  }

  /** The served champions with their history, into `table`. */
  async function showModels(table) {
    const data = await api("/v1/models");
    const rows = data.models.map((m) => [
      [taskJa(m.task)], ["v" + m.version], [metricJa(m.headline_metric)],
      [m.headline_value === null ? "—" : Number(m.headline_value).toLocaleString("ja-JP"), true],
      [(m.trained_at || "—").replace("T", " ").slice(0, 16)],
      [(m.champion_history || []).map(historyText).join(" → ") || "—"]]);
    fillTable(table, [["業務"], ["バージョン"], ["評価指標"], ["値", true], ["学習日時"],
                      ["更新履歴"]], rows, "提供中のモデル（業務ごとの現行版と更新履歴）");
  }

  /**
   * The key form of a page that both a municipality and the operator use: /v1/whoami says
   * whose the key is (role tenant or admin). onLogin(mode) is awaited after a login
   * ("tenant" | "admin"); onLogout() resets the page. Returns {mode, requireKey, resume}.
   */
  function makeAccountLogin({ onLogin, onLogout }) {
    let mode = null;
    function setName(text) { $("tenant-name").textContent = text; }
    async function login(key, quiet) {
      session.key = key; mode = null;
      try {
        const who = await api("/v1/whoami");
        session.tenant = who; mode = who.role === "admin" ? "admin" : "tenant";
        setName(accountLabel(who));
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) {  // a key nobody has: forget it
          session.key = ""; session.tenant = null;
          sessionStorage.removeItem(KEY_STORE);
        }
        fail(err);
        return;
      }
      sessionStorage.setItem(KEY_STORE, key);
      $("logout").hidden = false;
      if (!quiet) showAlert(session.tenant.name + " としてログインしました。", "info");
      await onLogin(mode);
    }
    function requireKey() {
      if (mode) return true;
      showAlert("先にAPIキーを入力して「保存」を押してください。");
      return false;
    }
    const resume = wireKeyForm(login, () => {
      session.tenant = null; mode = null;
      setName("未ログイン");
      $("logout").hidden = true;
    }, onLogout);
    return { mode: () => mode, requireKey, resume };
  }

  return { TASK_JA, METRIC_JA, taskJa, metricJa, fillTable, historyText, showModels,
           makeAccountLogin };
})(window.Kyodo));
