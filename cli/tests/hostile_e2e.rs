//! Hostile input at the edge, through `iaas serve` on the demo inventory: what a signed but
//! malicious user can send, and what the bot must refuse or neutralise.

mod common;

use common::{button_token, start_on, Serve};
use iaas_tests::vcsim::Vcsim;
use iaas_vsphere::Vcenter;

/// A resize's Confirm token sent as a delete press (signed, by the asker) is refused with a
/// sentence and deletes nothing; the token still works for the resize it was made for.
#[tokio::test]
async fn a_confirmation_token_works_only_for_its_own_action() {
    // vcsim's app-web-02 has no hot-add, so a resize asks before its power cycle.
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, reader) = start_on(&vcsim, "", &[]).await;
    let prompt = serve.run("U1", "resize app-web-02 --cpu 3").await;
    assert!(prompt.readable().contains("hot-add"), "{}", prompt.readable());
    let token = button_token(&prompt);

    assert_eq!(serve.press("U1", "delete.confirm", &token).await, 200);
    let refused = serve.answer().await.readable();
    assert!(refused.contains("That button was made for another request, not a delete; nothing was changed."), "{refused}");
    assert!(reader.find_vm("app-web-02").await.is_ok(), "the VM was not deleted");

    // Nor as a decommission press.
    assert_eq!(serve.press("U1", "decommission.confirm", &token).await, 200);
    assert!(serve.answer().await.readable().contains("made for another request"));

    // The refused presses did not use it up: the resize it was asked for still goes through.
    assert_eq!(serve.press("U1", "resize.confirm", &token).await, 200);
    let done = serve.answer().await.readable();
    assert!(done.contains("now has 3 vCPU"), "{done}");
}
