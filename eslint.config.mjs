// ESLint (flat config) for the page's JavaScript in js/ (`npm run lint`).  .mjs: the
// top-level package.json is not "type": "module" (JupyterLab's own node scripts run from
// this repository and expect CommonJS there).
import js from "@eslint/js";
import globals from "globals";

// The one door between kernel and page is js/dispatch.js: nothing else listens to
// msg:custom or calls model.send (anywidget's comm), so every message is checked.  And the
// page holds no name rule: which names are one user is the server's key, never a
// lower-cased or normalised name here.
const HOUSE_RULES = [
  {
    selector: "CallExpression[callee.property.name=/^(toLowerCase|toLocaleLowerCase|normalize)$/]",
    message: "The page holds no name rule: compare the server's keys (from_key, keys, peerKey).",
  },
  {
    selector: "CallExpression[callee.property.name='on'][arguments.0.value='msg:custom']",
    message: "Kernel messages arrive through the Dispatcher (js/dispatch.js): register a handler there.",
  },
  {
    selector: "CallExpression[callee.property.name='send'][callee.object.name='model']",
    message: "Send to the kernel with sendToKernel / dispatcher.send (js/dispatch.js), which checks the table.",
  },
  {
    selector: "CallExpression[callee.property.name='send'][callee.object.property.name='model']",
    message: "Send to the kernel with sendToKernel / dispatcher.send (js/dispatch.js), which checks the table.",
  },
];

// An underscored member is its object's own: another module reaching into `x._y` is a seam
// cut in the wrong place, so give the owner a public verb (or make the two one module).
// Only `this._y` is allowed: `#private` members need no rule (the language refuses them),
// and `__name` globals (window.__nbcall, the page's debug handle) are not members.
// Destructuring counts too (`const { _y } = other`), except of `this`.  Tests (js/test)
// may look inside: no-restricted-syntax is off there.
const PRIVATE_MEMBER = "/^_[^_]/";
const PRIVATE_RULES = [
  {
    selector: `MemberExpression[object.type!='ThisExpression'][computed=false][property.name=${PRIVATE_MEMBER}]`,
    message: "Underscored members are private to their object: call a public method of it instead.",
  },
  {
    selector: `MemberExpression[object.type!='ThisExpression'][computed=true][property.value=${PRIVATE_MEMBER}]`,
    message: "Underscored members are private to their object: call a public method of it instead.",
  },
  {
    selector: `VariableDeclarator[init.type!='ThisExpression'] > ObjectPattern > Property[key.name=${PRIVATE_MEMBER}]`,
    message: "Underscored members are private to their object: call a public method of it instead.",
  },
];

export default [
  { ignores: ["nbcall/static/**", "node_modules/**", ".venv/**"] },
  js.configs.recommended,
  {
    files: ["js/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: { ...globals.browser },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      "no-unused-vars": ["error", { args: "after-used", argsIgnorePattern: "^_", caughtErrors: "none" }],
      eqeqeq: ["error", "smart"],
      "prefer-const": "error",
      "no-var": "error",
      "no-shadow": "error",
      "no-throw-literal": "error",
      "no-implicit-coercion": ["error", { allow: ["!!"] }],
      "no-console": ["error", { allow: ["warn", "error"] }],
      "object-shorthand": "error",
      "no-restricted-syntax": ["error", ...HOUSE_RULES, ...PRIVATE_RULES],
    },
  },
  {
    files: ["js/dispatch.js"], // the door itself
    rules: { "no-restricted-syntax": ["error", HOUSE_RULES[0], ...PRIVATE_RULES] },
  },
  {
    files: ["js/test/**/*.js"],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
    rules: { "no-restricted-syntax": "off" },
  },
];
