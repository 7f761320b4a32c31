//! The answers every route of a dialect can give, added to each operation
//! that does not document them itself: a missing or refused key (401,
//! 403), the database away (503), a body that is not a JSON object or
//! comes too slowly or is too large (400, 408, 413), a path id that names
//! nothing of the caller's (404), and a query parameter with control
//! characters (`http::query_guard`: 422 in v1, 400 in the configs API).
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::{HeaderBuilder, ObjectBuilder, OpenApi, Ref, RefOr, ResponseBuilder, Type};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    V1,
    Configs,
    /// The Svix dialect: `{code, detail}`, 422 `{detail: [...]}`.
    Svix,
    /// Health and the document itself: no key, no body.
    Open,
}

impl Dialect {
    fn of(path: &str) -> Self {
        if path.starts_with("/health") || path == "/api/v1/openapi.json" || path == "/api/v1/health"
        {
            Dialect::Open
        } else if crate::http::svix::is_svix_path(path) {
            Dialect::Svix
        } else if path.starts_with("/api/v1") {
            Dialect::V1
        } else {
            Dialect::Configs
        }
    }

    fn error_schema(self) -> &'static str {
        match self {
            Dialect::Configs => "ConfigsError",
            Dialect::Svix => "SvixError",
            _ => "V1Error",
        }
    }
}

pub fn add(document: &mut OpenApi) {
    for (path, item) in document.paths.paths.iter_mut() {
        let dialect = Dialect::of(path);
        if dialect == Dialect::Open {
            continue;
        }
        let has_path_id = path.contains('{');
        for operation in operations(item) {
            add_to(operation, dialect, has_path_id);
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.post.as_mut(),
        item.patch.as_mut(),
        item.put.as_mut(),
        item.delete.as_mut(),
    ]
    .into_iter()
    .flatten()
}

fn add_to(operation: &mut Operation, dialect: Dialect, has_path_id: bool) {
    let mut statuses: Vec<(&str, &str)> = vec![
        ("401", "No API key, or an unknown or revoked one"),
        (
            "403",
            "The key lacks the scope, or the organisation the plan or the `webhooks` feature",
        ),
        (
            "503",
            "The database cannot be reached; try again after `Retry-After` seconds",
        ),
    ];
    match dialect {
        Dialect::V1 => statuses.push((
            "422",
            "Invalid fields or query parameters; `errors` names each",
        )),
        Dialect::Svix => statuses.push((
            "422",
            "Invalid fields or query parameters; `detail` names each (`loc`)",
        )),
        _ => statuses.push(("400", "An invalid parameter; `params` names it")),
    }
    if operation.request_body.is_some() {
        if dialect == Dialect::V1 {
            statuses.push(("400", "The body is not a JSON object"));
        }
        if dialect == Dialect::Svix {
            statuses.push((
                "409",
                "The `Idempotency-Key` is in use by a request still running, or was used for another request",
            ));
        }
        statuses.push((
            "408",
            "The body did not arrive within the request deadline (or too slowly)",
        ));
        statuses.push(("413", "The body is larger than 1 MiB"));
    }
    if has_path_id {
        statuses.push((
            "404",
            "No such resource in the caller's organisation (another organisation's id included)",
        ));
    }
    for (status, description) in statuses {
        if operation.responses.responses.contains_key(status) {
            continue;
        }
        let mut response = ResponseBuilder::new().description(description).content(
            "application/json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(RefOr::Ref(Ref::from_schema_name(
                    dialect.error_schema(),
                ))))
                .build(),
        );
        if status == "503" {
            response = response.header("Retry-After", seconds_header("When to try again"));
        }
        if status == "401" && matches!(dialect, Dialect::V1 | Dialect::Svix) {
            response = response.header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some("`Bearer`"))
                    .build(),
            );
        }
        operation
            .responses
            .responses
            .insert(status.to_owned(), RefOr::T(response.build()));
    }
}

fn seconds_header(description: &str) -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some(description))
        .build()
}
