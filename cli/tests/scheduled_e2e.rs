//! The scheduled endpoints on `iaas serve`'s public listener (#15.4): only a trigger signed with
//! the shared secret runs a sweep or a resume; `iaas trigger` is how a scheduler signs.

mod common;

use chrono::{Duration, Utc};
use common::{start_on, SHARED_SECRET};
use iaas_invocation::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use iaas_tests::vcsim::Vcsim;

const POLICY: &str = r#"
[lease]
default_days = 10
max_days = 15
reminder_days = [7, 1]
min_notice_hours = 24
grace_days = 3
"#;

#[tokio::test]
async fn only_a_signed_trigger_runs_the_sweep() {
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, _reader) = start_on(&vcsim, POLICY, &[]).await;
    serve.run("U1", "create sched-01").await;
    // Due for its seven-day reminder: a sweep now sends one DM.
    let soon = (Utc::now() + Duration::days(3)).format("%Y-%m-%d").to_string();
    serve.cli(&["expire", "set", "sched-01", &soon]).await;

    let now = Utc::now().timestamp();
    let wrong = iaas_invocation::sign(b"not-the-shared-secret", now, Vec::new());
    let stale = iaas_invocation::sign(SHARED_SECRET.as_bytes(), now - 3600, Vec::new());
    for name in ["iaas-expire-sweep", "iaas-decommission-resume"] {
        let (status, body) = serve.post_function(name, &[], Vec::new()).await;
        assert_eq!(status, 401, "unsigned {name}: {body}");
        assert!(body.contains("iaas trigger"), "{body}");
        for forged in [&wrong, &stale] {
            let headers = [(TIMESTAMP_HEADER, forged.timestamp.to_string()), (SIGNATURE_HEADER, forged.signature.clone())];
            let (status, body) = serve.post_function(name, &headers, Vec::new()).await;
            assert_eq!(status, 401, "forged {name}: {body}");
        }
    }
    assert!(serve.posts_to("U1").is_empty(), "no sweep ran: no reminder was sent");

    let report = serve.trigger("iaas-expire-sweep").await;
    assert!(report.contains("1 reminded"), "{report}");
    assert_eq!(serve.posts_to("U1").len(), 1);
    assert_eq!(serve.trigger("iaas-decommission-resume").await.trim(), r#"{"resumed":0}"#);
}
