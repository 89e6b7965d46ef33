// The reference page at /docs: Swagger UI (loaded just before, from
// /docs/swagger-ui-bundle.js) renders this api's /openapi.json. Nothing is
// fetched from anywhere but the api.
"use strict";

window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  // The plain layout: no top bar with a box to load other descriptions, and
  // no online validator badge, an image fetched from the validator's server
  // (told where this api is). The validator is set off too, should the
  // layout ever show the badge.
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  validatorUrl: "none",
});
