import { h } from "/static/shared/api.js";

const spec = await (await fetch("/api/v1/openapi.json")).json();
document.querySelector("#intro").append(h("p", {}, spec.info.description));
const byTag = {};
for (const [path, methods] of Object.entries(spec.paths)) {
  for (const [method, op] of Object.entries(methods)) (byTag[op.tags[0]] ||= []).push({ path, method, op });
}
for (const [tag, ops] of Object.entries(byTag)) {
  document.querySelector("#operations").append(h("h2", {}, tag), ...ops.map(({ path, method, op }) =>
    h("details", { class: "op" }, h("summary", {}, h("span", { class: "method" }, method.toUpperCase()), " ", h("span", { class: "path" }, path), " — ", op.summary,
      " ", h("span", { class: "roles" }, `(${op["x-linli-roles"].join(", ") || "signed in"})`)),
      op.parameters.length ? h("p", {}, "Parameters: ", op.parameters.map((p) => `${p.name} (${p.in})`).join(", ")) : "",
      op.requestBody ? h("pre", {}, JSON.stringify(op.requestBody.content["application/json"].schema, null, 2)) : "")));
}
