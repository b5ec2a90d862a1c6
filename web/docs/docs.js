// Swagger UI over our own spec. validatorUrl: null keeps it from sending the spec to swagger.io's
// online validator (no network is assumed); the spec is validated by the test suite instead.
window.ui = SwaggerUIBundle({
  url: new URL("../openapi.json", window.location.href).href,
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  defaultModelsExpandDepth: 0,
  tryItOutEnabled: false,
});
