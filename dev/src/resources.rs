//! The table and queues of `template.yaml`, created on the local DynamoDB/SQS server exactly as
//! the template defines them (key schema, TTL, FIFO, deduplication, visibility, redrive), so
//! the local stack and the tests never carry a second, drifting copy.

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_yaml::Value;
use std::collections::HashMap;
use std::path::Path;

/// The DynamoDB table of the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    pub logical_id: String,
    pub keys: Vec<(String, KeyType)>,
    pub attributes: Vec<(String, String)>,
    pub ttl_attribute: Option<String>,
    pub indexes: Vec<IndexDef>,
}

/// A global secondary index of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDef {
    pub name: String,
    pub keys: Vec<(String, KeyType)>,
    pub projection: String,
}

/// The `KeySchema` of a table or an index.
fn key_schema(props: &Value) -> Result<Vec<(String, KeyType)>> {
    props
        .get("KeySchema")
        .and_then(Value::as_sequence)
        .context("KeySchema")?
        .iter()
        .map(|k| {
            let name = str_at(k, "AttributeName").context("key AttributeName")?;
            let kind = KeyType::from(str_at(k, "KeyType").context("key KeyType")?);
            Ok((name.to_owned(), kind))
        })
        .collect()
}

/// An SQS queue of the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDef {
    pub logical_id: String,
    pub fifo: bool,
    pub content_based_deduplication: bool,
    pub visibility_timeout: Option<i64>,
    pub retention: Option<i64>,
    /// (logical id of the dead-letter queue, maxReceiveCount)
    pub redrive: Option<(String, i64)>,
}

/// An HTTP API route of the template: the function (by binary name) that serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    pub binary: String,
    /// `GET`, `POST`, ... or `ANY`.
    pub method: String,
    pub path: String,
    /// The binary of the route's Lambda authorizer (its `Auth.Authorizer` names one of the
    /// `HttpApi`'s authorizers with a `FunctionArn`); `None` for the API's JWT authorizer.
    pub authorizer: Option<String>,
    /// `Auth.Authorizer: NONE`: a public route, answered without any identity.
    pub public: bool,
    /// `Auth.Authorizer: AWS_IAM`: an operator route, for SigV4-signed IAM principals only.
    pub iam: bool,
}

/// The `Auth.Authorizer` value of a public route.
pub const PUBLIC: &str = "NONE";

/// The `Auth.Authorizer` value of an IAM (operator) route.
pub const IAM: &str = "AWS_IAM";

/// What the local stack needs from `template.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub table: TableDef,
    pub queues: Vec<QueueDef>,
    /// Every function resource: (logical id, binary name from `BuildProperties.Binary`).
    pub functions: Vec<(String, String)>,
    /// Every `HttpApi` event of every function.
    pub routes: Vec<HttpRoute>,
    /// The binaries of the functions with a function URL.
    pub function_urls: Vec<String>,
    /// The HTTP API's `CorsConfiguration` (its origins are `AllowedRedirectOrigins`'), if any.
    pub cors: Option<Cors>,
    pub raw: Value,
}

/// What browsers on an allowed origin may send, as the HTTP API's `CorsConfiguration` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    pub methods: Vec<String>,
    /// Lowercase.
    pub headers: Vec<String>,
    pub max_age: u64,
}

/// The `CorsConfiguration` of the template's HTTP API.
fn cors(raw: &Value) -> Option<Cors> {
    let resources = raw.get("Resources")?.as_mapping()?;
    let api = resources.values().find(|r| str_at(r, "Type") == Some("AWS::Serverless::HttpApi"))?;
    let config = api.get("Properties")?.get("CorsConfiguration")?;
    let list = |name: &str| -> Vec<String> {
        config
            .get(name)
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    Some(Cors {
        methods: list("AllowMethods"),
        headers: list("AllowHeaders").iter().map(|h| h.to_ascii_lowercase()).collect(),
        max_age: config.get("MaxAge").and_then(Value::as_u64).unwrap_or(0),
    })
}

/// A created queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    pub url: String,
    pub arn: String,
}

/// The resources created for one stack (or one test).
#[derive(Debug, Clone)]
pub struct Resources {
    pub table: String,
    pub queues: HashMap<String, Queue>,
}

impl Resources {
    /// The queue created for a logical id of the template.
    pub fn queue(&self, logical_id: &str) -> Result<&Queue> {
        self.queues.get(logical_id).ok_or_else(|| anyhow!("template has no queue {logical_id}"))
    }
}

/// `template.yaml` at the repository root.
pub fn template_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml")
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn int_at(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(|x| x.as_i64().or_else(|| x.as_str().and_then(|s| s.parse().ok())))
}

fn bool_at(v: &Value, key: &str) -> bool {
    v.get(key).and_then(|x| x.as_bool().or_else(|| x.as_str().map(|s| s == "true"))).unwrap_or(false)
}

/// The logical id behind `!GetAtt X.Arn` or `{"Fn::GetAtt": ["X", "Arn"]}`.
fn get_att_target(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(tagged) if tagged.tag == "GetAtt" => {
            tagged.value.as_str().and_then(|s| s.split('.').next()).map(str::to_owned)
        }
        Value::Mapping(m) => m
            .get("Fn::GetAtt")
            .and_then(|x| x.as_sequence())
            .and_then(|s| s.first())
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

/// The binary of the `HttpApi` authorizer `name` when it is a Lambda authorizer (its
/// `FunctionArn` is `!GetAtt <function>.Arn`); `None` for a JWT authorizer.
fn lambda_authorizer(
    resources: &serde_yaml::Mapping,
    name: &str,
    functions: &[(String, String)],
) -> Result<Option<String>> {
    let authorizer = resources
        .values()
        .filter(|r| str_at(r, "Type") == Some("AWS::Serverless::HttpApi"))
        .find_map(|api| api.get("Properties")?.get("Auth")?.get("Authorizers")?.get(name))
        .with_context(|| format!("a route names authorizer {name}, which no HttpApi defines"))?;
    let Some(arn) = authorizer.get("FunctionArn") else { return Ok(None) };
    let function =
        get_att_target(arn).with_context(|| format!("authorizer {name}: FunctionArn is not !GetAtt <function>.Arn"))?;
    let binary = functions.iter().find(|(id, _)| *id == function).map(|(_, binary)| binary.clone());
    binary.map(Some).with_context(|| format!("authorizer {name} names {function}, which is no function"))
}

impl Template {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self> {
        let raw: Value = serde_yaml::from_str(text).context("template.yaml is not YAML")?;
        let resources = raw.get("Resources").and_then(Value::as_mapping).context("template has no Resources")?;
        let mut tables = Vec::new();
        let mut queues = Vec::new();
        let mut functions = Vec::new();
        let mut routes = Vec::new();
        let mut function_urls = Vec::new();
        for (id, resource) in resources {
            let id = id.as_str().context("resource id")?.to_owned();
            let props = resource.get("Properties").cloned().unwrap_or(Value::Null);
            match str_at(resource, "Type") {
                Some("AWS::DynamoDB::Table") => {
                    let keys = key_schema(&props).context("table KeySchema")?;
                    let indexes = props
                        .get("GlobalSecondaryIndexes")
                        .and_then(Value::as_sequence)
                        .into_iter()
                        .flatten()
                        .map(|index| {
                            Ok(IndexDef {
                                name: str_at(index, "IndexName").context("index IndexName")?.to_owned(),
                                keys: key_schema(index).context("index KeySchema")?,
                                projection: index
                                    .get("Projection")
                                    .and_then(|p| str_at(p, "ProjectionType"))
                                    .unwrap_or("ALL")
                                    .to_owned(),
                            })
                        })
                        .collect::<Result<_>>()?;
                    let attributes = props
                        .get("AttributeDefinitions")
                        .and_then(Value::as_sequence)
                        .context("table AttributeDefinitions")?
                        .iter()
                        .map(|a| {
                            Ok((
                                str_at(a, "AttributeName").context("AttributeName")?.to_owned(),
                                str_at(a, "AttributeType").context("AttributeType")?.to_owned(),
                            ))
                        })
                        .collect::<Result<_>>()?;
                    let ttl = props.get("TimeToLiveSpecification").filter(|t| bool_at(t, "Enabled"));
                    let ttl_attribute = ttl.and_then(|t| str_at(t, "AttributeName")).map(str::to_owned);
                    tables.push(TableDef { logical_id: id, keys, attributes, ttl_attribute, indexes });
                }
                Some("AWS::SQS::Queue") => {
                    let redrive = match props.get("RedrivePolicy") {
                        None => None,
                        Some(policy) => {
                            let dlq =
                                policy.get("deadLetterTargetArn").and_then(get_att_target).context("redrive target")?;
                            let max = int_at(policy, "maxReceiveCount").context("redrive maxReceiveCount")?;
                            Some((dlq, max))
                        }
                    };
                    queues.push(QueueDef {
                        logical_id: id,
                        fifo: bool_at(&props, "FifoQueue"),
                        content_based_deduplication: bool_at(&props, "ContentBasedDeduplication"),
                        visibility_timeout: int_at(&props, "VisibilityTimeout"),
                        retention: int_at(&props, "MessageRetentionPeriod"),
                        redrive,
                    });
                }
                Some("AWS::Serverless::Function") => {
                    let binary = resource
                        .get("Metadata")
                        .and_then(|m| m.get("BuildProperties"))
                        .and_then(|b| str_at(b, "Binary"))
                        .with_context(|| format!("{id} has no Metadata.BuildProperties.Binary"))?;
                    let events = props.get("Events").and_then(Value::as_mapping).into_iter().flatten();
                    for event in events.map(|(_, e)| e).filter(|e| str_at(e, "Type") == Some("HttpApi")) {
                        let route = event.get("Properties").context("HttpApi event Properties")?;
                        // The authorizer's name for now; its binary once every function is read.
                        let named = route.get("Auth").and_then(|a| str_at(a, "Authorizer"));
                        let public = named == Some(PUBLIC);
                        let iam = named == Some(IAM);
                        let authorizer = named.filter(|_| !public && !iam).map(str::to_owned);
                        routes.push(HttpRoute {
                            binary: binary.to_owned(),
                            method: str_at(route, "Method").unwrap_or("ANY").to_uppercase(),
                            path: str_at(route, "Path")
                                .with_context(|| format!("{id}: HttpApi event Path"))?
                                .to_owned(),
                            authorizer,
                            public,
                            iam,
                        });
                    }
                    if props.get("FunctionUrlConfig").is_some() {
                        function_urls.push(binary.to_owned());
                    }
                    functions.push((id, binary.to_owned()));
                }
                _ => {}
            }
        }
        for route in &mut routes {
            route.authorizer = match route.authorizer.take() {
                Some(name) => lambda_authorizer(resources, &name, &functions)?,
                None => None,
            };
        }
        let table = match tables.len() {
            1 => tables.remove(0),
            n => bail!("template must define exactly one DynamoDB table, found {n}"),
        };
        // Dead-letter queues first: a queue's redrive policy names its DLQ's ARN.
        queues.sort_by_key(|q| q.redrive.is_some());
        Ok(Self { table, queues, functions, routes, function_urls, cors: cors(&raw), raw })
    }

    /// Creates the table and queues, their names prefixed with `prefix` (one prefix per stack
    /// or per test, since the local server never forgets).
    pub async fn create(
        &self,
        dynamo: &aws_sdk_dynamodb::Client,
        sqs: &aws_sdk_sqs::Client,
        prefix: &str,
    ) -> Result<Resources> {
        let table = format!("{prefix}-{}", self.table.logical_id);
        let mut create = dynamo.create_table().table_name(&table).billing_mode(BillingMode::PayPerRequest);
        for (name, kind) in &self.table.keys {
            create =
                create.key_schema(KeySchemaElement::builder().attribute_name(name).key_type(kind.clone()).build()?);
        }
        for (name, kind) in &self.table.attributes {
            create = create.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::from(kind.as_str()))
                    .build()?,
            );
        }
        for index in &self.table.indexes {
            let mut gsi = GlobalSecondaryIndex::builder().index_name(&index.name).projection(
                Projection::builder().projection_type(ProjectionType::from(index.projection.as_str())).build(),
            );
            for (name, kind) in &index.keys {
                gsi = gsi.key_schema(KeySchemaElement::builder().attribute_name(name).key_type(kind.clone()).build()?);
            }
            create = create.global_secondary_indexes(gsi.build()?);
        }
        match create.send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => {}
            Err(e) => return Err(anyhow::Error::new(e).context(format!("creating table {table}"))),
        }
        if let Some(attribute) = &self.table.ttl_attribute {
            dynamo
                .update_time_to_live()
                .table_name(&table)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder().attribute_name(attribute).enabled(true).build()?,
                )
                .send()
                .await
                .with_context(|| format!("enabling TTL on {table}"))?;
        }

        let mut queues: HashMap<String, Queue> = HashMap::new();
        for def in &self.queues {
            let name = format!("{prefix}-{}{}", def.logical_id, if def.fifo { ".fifo" } else { "" });
            let mut create = sqs.create_queue().queue_name(&name);
            if def.fifo {
                create = create.attributes(QueueAttributeName::FifoQueue, "true").attributes(
                    QueueAttributeName::ContentBasedDeduplication,
                    def.content_based_deduplication.to_string(),
                );
            }
            if let Some(seconds) = def.visibility_timeout {
                create = create.attributes(QueueAttributeName::VisibilityTimeout, seconds.to_string());
            }
            if let Some(seconds) = def.retention {
                create = create.attributes(QueueAttributeName::MessageRetentionPeriod, seconds.to_string());
            }
            if let Some((dlq, max)) = &def.redrive {
                let target =
                    queues.get(dlq).with_context(|| format!("{} redrives to unknown queue {dlq}", def.logical_id))?;
                let policy = serde_json::json!({ "deadLetterTargetArn": target.arn, "maxReceiveCount": max });
                create = create.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
            }
            let url = create
                .send()
                .await
                .with_context(|| format!("creating queue {name}"))?
                .queue_url
                .context("queue url")?;
            let attrs = sqs
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .with_context(|| format!("reading queue {name}"))?;
            let arn =
                attrs.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).cloned().context("queue arn")?;
            queues.insert(def.logical_id.clone(), Queue { url, arn });
        }
        Ok(Resources { table, queues })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_template_defines_table_queues_and_functions() {
        let template = Template::load(&template_path()).unwrap();

        assert_eq!(template.table.logical_id, "Table");
        assert_eq!(template.table.ttl_attribute.as_deref(), Some("expires_at"));
        let events = template.queues.iter().find(|q| q.logical_id == "EventsQueue").unwrap();
        assert!(events.fifo && !events.content_based_deduplication);
        assert_eq!(events.redrive, Some(("EventsDeadLetterQueue".to_owned(), 5)));
        for (i, queue) in template.queues.iter().enumerate() {
            if let Some((dlq, _)) = &queue.redrive {
                let at = template.queues.iter().position(|q| &q.logical_id == dlq).unwrap();
                assert!(at < i, "{dlq} must be created before {}", queue.logical_id);
            }
        }
        assert!(template.functions.contains(&("SubscriptionFunction".to_owned(), "subscription".to_owned())));
        let route = |binary: &str, method: &str, path: &str, authorizer: Option<&str>| HttpRoute {
            binary: binary.into(),
            method: method.into(),
            path: path.into(),
            authorizer: authorizer.map(str::to_owned),
            public: false,
            iam: false,
        };
        assert!(template.routes.contains(&route("subscription", "GET", "/subscription", None)));
        assert!(template.routes.contains(&route("checkout", "DELETE", "/account", None)));
        assert!(template.routes.contains(&route("keys", "POST", "/api-keys/{id}/rotate", None)));
        assert!(template.routes.contains(&route("subscription", "GET", "/api/subscription", Some("authorizer"))));
        assert!(template.routes.contains(&HttpRoute { public: true, ..route("subscription", "GET", "/plans", None) }));
        assert_eq!(template.function_urls, ["webhook-intake"]);
    }
}
