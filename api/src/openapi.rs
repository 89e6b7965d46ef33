//! The OpenAPI 3 description of the api, generated from the handlers'
//! `#[utoipa::path]` annotations and the types they take and return, and
//! served at `/openapi.json`. A path is documented where its handler is
//! written, so the two change together; `tests/openapi.rs` checks that every
//! documented operation answers and that no undocumented method does.

use utoipa::OpenApi;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::routes::{
    batches, dashboard, dead, docs, examples, health, jobs_cancel, jobs_get, jobs_submit,
    jobs_wait, metrics, openapi, page,
};

/// The multipart form of `POST /v1/jobs` (documentation only: the handler
/// reads the parts one by one).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct MultipartSubmission {
    /// The image file; or, instead, an `image_url` or `image_path` part.
    #[schema(format = Binary, value_type = String)]
    image: Vec<u8>,
    /// Instead of the image: an https URL on this server's --image-hosts.
    image_url: Option<String>,
    /// Instead of the image: a path under this server's --image-root.
    image_path: Option<String>,
    /// One part per sentence (1 to 64).
    text: Vec<String>,
    /// Optional, at most one part: a text that holds together with the image
    /// (1 to 1000 characters, UTF-8); each sentence is judged against the
    /// image and this premise. The default model fails such a job with
    /// `premise_unsupported`.
    premise: Option<String>,
    /// Where to POST the job's JSON when it ends.
    callback_url: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "verdict",
        description = "Judges whether an image supports a sentence: yes, no or maybe, with scores and an explanation. \
                       Errors always have the body {\"error\": {\"code\", \"message\"}}; the codes are stable (docs/api.md).",
        license(name = "Apache-2.0"),
    ),
    paths(
        jobs_submit::submit,
        jobs_get::get_job,
        jobs_wait::wait_jobs,
        jobs_cancel::cancel_job,
        dead::list,
        dead::retry,
        dead::discard,
        batches::submit_batch,
        dashboard::snapshot,
        health::healthz,
        health::readyz,
        metrics::metrics,
        openapi::openapi_json,
        page::index,
        page::script,
        page::style,
        dashboard::page,
        dashboard::script,
        dashboard::style,
        examples::list,
        examples::photo,
        docs::page,
        docs::script,
        docs::swagger_script,
        docs::swagger_style,
    ),
    components(schemas(
        crate::error::ErrorBody,
        crate::error::ErrorDetail,
        MultipartSubmission,
        crate::submission::json::JsonSubmission,
        batches::BatchRequest,
        batches::BatchJob,
        batches::BatchResponse,
        batches::BatchItem,
        jobs_wait::WaitRequest,
        jobs_wait::Until,
        jobs_wait::WaitResponse,
        jobs_wait::WaitItem,
        verdict_shared::queue::dead_list::DeadPage,
        dead::Discarded,
        crate::dashboard::snapshot::Dashboard,
        crate::dashboard::snapshot::WorkerRow,
        crate::dashboard::snapshot::WorkerState,
        crate::dashboard::snapshot::QueueNow,
        verdict_shared::queue::activity::MinuteActivity,
        verdict_shared::queue::recent_failures::RecentFailure,
        verdict_shared::queue::queued::QueuedJob,
        examples::ExampleList,
        examples::ExampleItem,
        verdict_shared::queue::dead_list::DeadJob,
        verdict_shared::job::Job,
        verdict_shared::job::JobState,
        verdict_shared::job::JobError,
        verdict_shared::job::ImageInfo,
        verdict_shared::verdict::SentenceVerdict,
        verdict_shared::verdict::Label,
        verdict_shared::verdict::Scores,
        verdict_shared::verdict::Explanation,
        verdict_shared::verdict::LabelScore,
    )),
    modifiers(&BearerToken),
    tags(
        (name = "jobs", description = "Submit jobs and read their verdicts"),
        (name = "dead letters", description = "Jobs given up on after their last attempt: list, retry, discard"),
        (name = "operations", description = "Health, readiness, metrics, this description"),
        (name = "page", description = "The web page to try verdict, and this reference at /docs"),
    )
)]
pub struct ApiDoc;

/// The `bearer` security scheme: with `VERDICT_API_TOKEN` set, every `/v1`
/// operation needs `Authorization: Bearer <token>` (each lists it as one
/// alternative beside none, since the token is optional).
struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
