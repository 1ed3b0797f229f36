//! `/api/openapi.json`, generated from the route table, so that it lists exactly the routes the server answers,
//! and from the types the handlers send, so that each answer's `data` has the schema of what is sent: every
//! schema comes from a type's `JsonSchema` derive (JSON Schema 2020-12, as OpenAPI 3.1 takes it).

use schemars::generate::SchemaSettings;
use schemars::{json_schema, Schema};
use serde_json::{json, Map, Value};

use super::router::{routes, Access, Answer};

/// The OpenAPI 3.1 document of the API.
pub fn document() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let mut paths = Map::new();
    for route in routes() {
        let params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| {
                seg.strip_prefix('{')
                    .and_then(|s| s.strip_suffix('}'))
                    .map(|s| s.trim_end_matches('*'))
            })
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let security = match route.access {
            Access::Public => json!([]),
            Access::Admin | Access::AdminOrClient | Access::Metrics | Access::Proofs => json!([{ "bearer": [] }]),
        };
        let mut responses = Map::new();
        match route.answer {
            Answer::Json { status, data } => {
                let schema = envelope((data)(&mut generator));
                responses.insert(
                    status.to_string(),
                    json!({ "description": "success", "content": { "application/json": { "schema": schema } } }),
                );
            }
            Answer::Raw { statuses, content } => {
                let content: Map<String, Value> = content
                    .iter()
                    .map(|mime| ((*mime).to_owned(), json!({ "schema": {} })))
                    .collect();
                for status in statuses {
                    responses.insert(
                        status.to_string(),
                        json!({ "description": "success", "content": content }),
                    );
                }
            }
            Answer::Upgrade => {
                responses.insert(
                    "101".into(),
                    json!({ "description": "switching to the WebSocket protocol" }),
                );
            }
        }
        responses.insert(
            "default".into(),
            json!({ "description": "error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }),
        );
        let operation = json!({
            "summary": route.summary,
            "operationId": format!("{:?}", route.endpoint),
            "parameters": params,
            "security": security,
            "x-cairn-access": format!("{:?}", route.access),
            "responses": responses,
        });
        let entry = paths
            .entry(route.path.replace("*}", "}"))
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = entry {
            methods.insert(route.method.as_str().to_ascii_lowercase(), operation);
        }
    }
    let mut schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    schemas.insert("Error".into(), error_schema().to_value());
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "cairn",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A backup server whose every state change is an event. Every JSON answer is an envelope: \
                            {success, data, message, timestamp} or {success: false, error: {code, message}, \
                            request_id, timestamp}."
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": schemas,
        }
    })
}

/// The success envelope around a `data` schema.
fn envelope(data: Schema) -> Value {
    json!({
        "type": "object",
        "required": ["success", "data", "timestamp"],
        "properties": {
            "success": { "const": true },
            "data": data,
            "message": { "type": ["string", "null"] },
            "timestamp": { "type": "string", "format": "date-time" },
        },
        "additionalProperties": false,
    })
}

fn error_schema() -> Schema {
    json_schema!({
        "type": "object",
        "required": ["success", "error", "request_id", "timestamp"],
        "properties": {
            "success": { "const": false },
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": { "code": { "type": "string" }, "message": { "type": "string" } },
                "additionalProperties": false,
            },
            "request_id": { "type": "string" },
            "timestamp": { "type": "string", "format": "date-time" },
        },
        "additionalProperties": false,
    })
}
