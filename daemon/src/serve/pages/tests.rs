//! Tests of the signed-link pages: escaping, headers and failure pages.

use super::*;

const EVIL: &str = "<script>alert('x')</script> & \"q\"";

fn view() -> View {
    View {
        title: EVIL.into(),
        description: format!("Rad 1\n{EVIL}"),
        workflow: EVIL.into(),
        instance: "0190".into(),
        assignee: "åsa@kommun.se".into(),
        option: EVIL.into(),
        due: Some(0),
        comment_required: true,
    }
}

async fn body(r: Response) -> String {
    let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    String::from_utf8(b.to_vec()).unwrap()
}

#[test]
fn escapes_everything_it_renders() {
    assert_eq!(
        escape(EVIL),
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
    );
    let html = confirm(&view(), Some(EVIL));
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("required aria-required=\"true\""));
    assert!(html.contains("1970-01-01T00:00:00Z (UTC)"));
    assert!(html.contains("<form method=\"post\">"));
    let optional = confirm(
        &View {
            comment_required: false,
            ..view()
        },
        None,
    );
    assert!(!optional.contains("required"), "{optional}");
}

#[tokio::test]
async fn pages_carry_their_headers_and_escape_the_heading() {
    let r = page(StatusCode::OK, EVIL, "<p>x</p>");
    let h = r.headers();
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
    assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
    assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let b = body(r).await;
    assert!(b.contains("<meta name=\"robots\" content=\"noindex, nofollow\">"));
    assert!(
        !b.contains("<script>") && !b.contains("http"),
        "no external assets: {b}"
    );
}

#[tokio::test]
async fn failures_map_to_statuses_and_clear_pages() {
    let cases = [
        (Failure::Link(LinkError::Malformed), 400, "invalid"),
        (Failure::Link(LinkError::BadSignature), 400, "invalid"),
        (Failure::Link(LinkError::Expired), 410, "expired"),
        (Failure::Used, 410, "used"),
        (Failure::NotFound("No such task".into()), 404, "not_found"),
        (
            Failure::Rejected(Rejection::TaskNotOpen(3)),
            409,
            "rejected",
        ),
        (
            Failure::Rejected(Rejection::AlreadyDecided("a@k.se".into())),
            409,
            "rejected",
        ),
        (
            Failure::Rejected(Rejection::NotAssignee("a@k.se".into())),
            409,
            "rejected",
        ),
        (
            Failure::Rejected(Rejection::CommentRequired),
            422,
            "rejected",
        ),
        (Failure::BadForm("x".into()), 400, "bad_form"),
        (Failure::Unavailable, 503, "error"),
        (Failure::Internal, 500, "error"),
    ];
    for (f, status, metric) in cases {
        assert_eq!(f.status().as_u16(), status, "{f:?}");
        assert_eq!(f.metric(), metric);
        let r = f.page();
        assert_eq!(r.status().as_u16(), status);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        let b = body(r).await;
        assert!(b.contains("role=\"alert\""), "{b}");
    }
    let used = body(Failure::Used.page()).await;
    assert!(used.contains("already used"), "{used}");
    let closed = body(Failure::Rejected(Rejection::TaskNotOpen(3)).page()).await;
    assert!(closed.contains("Task 3 is not open"), "{closed}");
    assert_eq!(
        Failure::from(RuntimeError::NotFound("x".into())).status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        Failure::from(RuntimeError::Rejected(Rejection::Finished)).status(),
        StatusCode::CONFLICT
    );
}
