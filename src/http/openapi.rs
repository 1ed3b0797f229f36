//! `/api/openapi.json`, generated from the route table, so that it lists exactly the routes the server answers.

use serde_json::{json, Map, Value};

use super::router::{routes, Access};

/// The OpenAPI 3 document of the API.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in routes() {
        let params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let security = match route.access {
            Access::Public => json!([]),
            Access::Admin | Access::AdminOrClient => json!([{ "bearer": [] }]),
        };
        let operation = json!({
            "summary": route.summary,
            "operationId": format!("{:?}", route.endpoint),
            "parameters": params,
            "security": security,
            "x-cairn-access": format!("{:?}", route.access),
            "responses": {
                "200": { "description": "success", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Success" } } } },
                "default": { "description": "error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
            }
        });
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = entry {
            methods.insert(route.method.as_str().to_ascii_lowercase(), operation);
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "cairn",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A backup server whose every state change is an event. Every answer is an envelope: \
                            {success, data, message, timestamp} or {success: false, error: {code, message}, timestamp}."
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Success": { "type": "object", "required": ["success", "data", "timestamp"], "properties": {
                    "success": { "type": "boolean" }, "data": {}, "message": { "type": "string", "nullable": true },
                    "timestamp": { "type": "string", "format": "date-time" } } },
                "Error": { "type": "object", "required": ["success", "error", "timestamp"], "properties": {
                    "success": { "type": "boolean" },
                    "error": { "type": "object", "properties": { "code": { "type": "string" }, "message": { "type": "string" } } },
                    "timestamp": { "type": "string", "format": "date-time" } } }
            }
        }
    })
}
