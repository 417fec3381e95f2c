//! The OpenFeature provider through the SDK's client API: what an
//! application that standardised on OpenFeature sees.

#![cfg(feature = "openfeature")]

use genesis_flags::openfeature::{GenesisProvider, PROVIDER_NAME};
use genesis_flags::{bucket, FlagStore, Reason};
use open_feature::{
    EvaluationContext, EvaluationErrorCode, EvaluationReason, FlagMetadataValue, OpenFeature,
};
use proptest::prelude::*;

const GENESIS: &str = include_str!("../examples/config/genesis.json");
const ROLLOUT: &str = "phase_4_deployment";

fn user(key: &str) -> EvaluationContext {
    EvaluationContext::default().with_targeting_key(key)
}

/// An API instance of its own (the tests run in parallel), with the
/// provider registered as its default.
async fn api(store: &FlagStore) -> OpenFeature {
    let mut api = OpenFeature::default();
    api.set_provider(GenesisProvider::new(store.clone())).await;
    api
}

#[tokio::test]
async fn the_client_gets_the_stores_answer_with_a_split_reason() {
    let store = FlagStore::from_json(GENESIS).unwrap();
    let api = api(&store).await;
    assert_eq!(api.provider_metadata().await.name, PROVIDER_NAME);
    let client = api.create_client();
    let mut ins = 0;
    for i in 0..5000 {
        let key = format!("user-{i}");
        let details = client
            .get_bool_details("htdag_enabled", Some(&user(&key)), None)
            .await
            .unwrap();
        assert_eq!(
            details.value,
            store.is_enabled("htdag_enabled", &key),
            "{key}"
        );
        assert_eq!(details.value, bucket(ROLLOUT, &key) < 50_000, "{key}");
        assert_eq!(details.reason, Some(EvaluationReason::Split));
        assert_eq!(details.flag_key, "htdag_enabled");
        let metadata = &details.flag_metadata.values;
        assert_eq!(
            metadata["rollout"],
            FlagMetadataValue::String(ROLLOUT.into())
        );
        assert_eq!(metadata["percentage"], FlagMetadataValue::Float(5.0));
        ins += usize::from(details.value);
    }
    assert!((150..350).contains(&ins), "{ins} of 5000 in at 5%");
}

#[tokio::test]
async fn flags_bound_to_one_rollout_agree_through_the_client() {
    let store = FlagStore::from_json(GENESIS).unwrap();
    let client = api(&store).await.create_client();
    for i in 0..500 {
        let context = user(&format!("user-{i}"));
        let htdag = client
            .get_bool_value("htdag_enabled", Some(&context), None)
            .await;
        let halo = client
            .get_bool_value("halo_enabled", Some(&context), None)
            .await;
        assert_eq!(htdag.unwrap(), halo.unwrap());
    }
}

#[tokio::test]
async fn include_exclude_kill_switch_and_experimental_map_to_their_reasons() {
    let store = FlagStore::from_json(
        r#"{"version": 1, "flags": {
            "new_checkout": {"percentage": 12.5, "include": ["qa-1"], "exclude": ["vip-7"]},
            "maintenance_banner": {"enabled": false},
            "aatc_system_enabled": {"class": "experimental"},
            "everyone": {}
        }}"#,
    )
    .unwrap();
    let client = api(&store).await.create_client();
    let details = |flag: &'static str, key: &'static str| {
        let client = &client;
        async move {
            client
                .get_bool_details(flag, Some(&user(key)), None)
                .await
                .unwrap()
        }
    };
    let included = details("new_checkout", "qa-1").await;
    assert!(included.value);
    assert_eq!(included.reason, Some(EvaluationReason::TargetingMatch));
    let excluded = details("new_checkout", "vip-7").await;
    assert!(!excluded.value);
    assert_eq!(excluded.reason, Some(EvaluationReason::TargetingMatch));
    let killed = details("maintenance_banner", "qa-1").await;
    assert!(!killed.value);
    assert_eq!(killed.reason, Some(EvaluationReason::Disabled));
    let experimental = details("aatc_system_enabled", "qa-1").await;
    assert!(!experimental.value);
    assert_eq!(experimental.reason, Some(EvaluationReason::Disabled));
    assert_eq!(
        experimental.flag_metadata.values["reason"],
        FlagMetadataValue::String("experimental_disabled".into())
    );
    let everyone = details("everyone", "anyone").await;
    assert!(everyone.value);
    assert_eq!(everyone.reason, Some(EvaluationReason::Static));
    assert_eq!(everyone.variant.as_deref(), Some("on"));
}

#[tokio::test]
async fn unknown_flags_and_missing_targeting_keys_give_the_callers_default() {
    let store = FlagStore::from_json(GENESIS).unwrap();
    let client = api(&store).await.create_client();

    let e = client
        .get_bool_details("no_such_flag", Some(&user("u")), None)
        .await
        .unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::FlagNotFound);
    let value = client
        .get_bool_value("no_such_flag", Some(&user("u")), None)
        .await
        .unwrap_or(true);
    assert!(value, "the caller's default is what the application gets");

    let e = client
        .get_bool_details("htdag_enabled", None, None)
        .await
        .unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::TargetingKeyMissing);
    // The kill switch answers the same for everyone: no key needed.
    let off = client
        .get_bool_details("aatc_system_enabled", None, None)
        .await
        .unwrap();
    assert_eq!(
        (off.value, off.reason),
        (false, Some(EvaluationReason::Disabled))
    );

    let e = client
        .get_int_value("htdag_enabled", Some(&user("u")), None)
        .await
        .unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::TypeMismatch);
}

#[tokio::test]
async fn the_targeting_key_may_come_from_the_global_context() {
    let store = FlagStore::from_json(GENESIS).unwrap();
    let mut api = api(&store).await;
    let key = (0..)
        .map(|i| format!("user-{i}"))
        .find(|k| store.is_enabled("htdag_enabled", k))
        .unwrap();
    api.set_evaluation_context(user(&key)).await;
    let client = api.create_client();
    assert!(client
        .get_bool_value("htdag_enabled", None, None)
        .await
        .unwrap());
}

#[tokio::test]
async fn a_replaced_snapshot_is_seen_by_the_next_resolution() {
    let store = FlagStore::from_json(GENESIS).unwrap();
    let client = api(&store).await.create_client();
    let key = (0..)
        .map(|i| format!("user-{i}"))
        .find(|k| !store.is_enabled("htdag_enabled", k))
        .unwrap();
    let context = user(&key);
    assert!(!client
        .get_bool_value("htdag_enabled", Some(&context), None)
        .await
        .unwrap());
    store
        .replace_from_json(&GENESIS.replace("\"percentage\": 5", "\"percentage\": 100"))
        .unwrap();
    let details = client
        .get_bool_details("htdag_enabled", Some(&context), None)
        .await
        .unwrap();
    assert!(details.value);
    assert_eq!(
        details.flag_metadata.values["percentage"],
        FlagMetadataValue::Float(100.0)
    );
}

#[tokio::test]
async fn the_singleton_serves_the_provider() {
    let store = FlagStore::from_json(GENESIS).unwrap();
    OpenFeature::singleton_mut()
        .await
        .set_provider(GenesisProvider::new(store.clone()))
        .await;
    let client = OpenFeature::singleton().await.create_client();
    for i in 0..100 {
        let key = format!("user-{i}");
        let value = client
            .get_bool_value("halo_enabled", Some(&user(&key)), None)
            .await
            .unwrap();
        assert_eq!(value, store.is_enabled("halo_enabled", &key));
    }
}

proptest! {
    /// For any user and flag, the provider answers what the store answers,
    /// with the reason the store's rule maps to.
    #[test]
    fn the_provider_agrees_with_the_store(key in "\\PC{1,40}", flag in 0usize..5) {
        let store = FlagStore::from_json(
            r#"{"version": 1, "rollouts": {"r": {"percentage": 37.5}},
                "flags": {"bound": {"rollout": "r", "include": ["qa-1"], "exclude": ["vip-7"]},
                          "own": {"percentage": 0.0001}, "everyone": {},
                          "killed": {"enabled": false}, "lab": {"class": "experimental"}}}"#,
        )
        .unwrap();
        let name = ["bound", "own", "everyone", "killed", "lab"][flag];
        let provider = GenesisProvider::new(store.clone());
        let details = provider.resolve(name, &user(&key)).unwrap();
        let direct = store.evaluate(name, &key);
        prop_assert_eq!(details.value, direct.enabled);
        let expected = match direct.reason {
            Reason::InRollout | Reason::OutOfRollout => EvaluationReason::Split,
            Reason::Included | Reason::Excluded => EvaluationReason::TargetingMatch,
            Reason::KillSwitch | Reason::ExperimentalDisabled => EvaluationReason::Disabled,
            _ => EvaluationReason::Static,
        };
        prop_assert_eq!(details.reason, Some(expected));
    }
}

const TYPED: &str = r#"{"version": 1, "flags": {
    "theme": {"variants": {"light": "white", "dark": "black"}, "default": "light", "off": "light",
              "rules": [{"when": [{"attribute": "plan", "op": "in", "values": ["pro"]}], "serve": "dark"}]},
    "limit": {"variants": {"low": 10, "high": 1000}, "default": "low", "off": "low",
              "rules": [{"when": [{"attribute": "seats", "op": "ge", "value": 50}], "serve": "high"}]},
    "ratio": {"variants": {"a": 0.25, "b": 0.5}, "default": "a", "off": "b", "enabled": false},
    "layout": {"variants": {"grid": {"rows": 3, "tags": ["x", "y"], "dense": true, "scale": 1.5, "none": null}},
               "default": "grid", "off": "grid"},
    "beta": {"default": "off", "rules": [{"when": [{"attribute": "signed_up", "op": "after",
              "value": "2025-01-01T00:00:00Z"}, {"attribute": "verified", "op": "in", "values": ["true"]}], "serve": "on"}]},
    "ab": {"variants": {"x": "X", "y": "Y"}, "default": "x", "off": "x", "rules": [{"split": {"x": 50, "y": 50}}]}
}}"#;

#[tokio::test]
async fn all_five_types_resolve_with_variant_and_reason() {
    let store = FlagStore::from_json(TYPED).unwrap();
    let client = api(&store).await.create_client();
    let pro = user("u-1")
        .with_custom_field("plan", "pro")
        .with_custom_field("seats", 64);
    let s = client
        .get_string_details("theme", Some(&pro), None)
        .await
        .unwrap();
    assert_eq!(
        (s.value.as_str(), s.variant.as_deref()),
        ("black", Some("dark"))
    );
    assert_eq!(s.reason, Some(EvaluationReason::TargetingMatch));
    let s = client
        .get_string_details("theme", Some(&user("u-1")), None)
        .await
        .unwrap();
    assert_eq!(
        (s.value.as_str(), s.reason),
        ("white", Some(EvaluationReason::Default))
    );
    let i = client
        .get_int_details("limit", Some(&pro), None)
        .await
        .unwrap();
    assert_eq!((i.value, i.variant.as_deref()), (1000, Some("high")));
    let f = client
        .get_float_details("ratio", Some(&pro), None)
        .await
        .unwrap();
    assert_eq!((f.value, f.reason), (0.5, Some(EvaluationReason::Disabled)));
    let f = client
        .get_float_value("limit", Some(&user("u")), None)
        .await
        .unwrap();
    assert_eq!(f, 10.0, "an integer flag answers a float request");
    let o = client
        .get_struct_details::<open_feature::StructValue>("layout", Some(&pro), None)
        .await
        .unwrap();
    assert_eq!(o.value.fields["rows"], open_feature::Value::Int(3));
    assert_eq!(o.value.fields["scale"], open_feature::Value::Float(1.5));
    assert!(!o.value.fields.contains_key("none"));
    assert_eq!(o.reason, Some(EvaluationReason::Static));
    let ab = client
        .get_string_details("ab", Some(&user("u-9")), None)
        .await
        .unwrap();
    assert_eq!(ab.reason, Some(EvaluationReason::Split));
    let expected = if bucket("ab", "u-9") < 500_000 {
        "X"
    } else {
        "Y"
    };
    assert_eq!(ab.value, expected);
}

#[tokio::test]
async fn context_fields_map_to_attributes_by_type() {
    let store = FlagStore::from_json(TYPED).unwrap();
    let provider = GenesisProvider::new(store);
    let signed_up = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let context = user("u")
        .with_custom_field(
            "signed_up",
            open_feature::EvaluationContextFieldValue::DateTime(signed_up),
        )
        .with_custom_field("verified", true);
    assert!(provider.resolve("beta", &context).unwrap().value);
    let early = time::OffsetDateTime::from_unix_timestamp(1_600_000_000).unwrap();
    let context = user("u")
        .with_custom_field(
            "signed_up",
            open_feature::EvaluationContextFieldValue::DateTime(early),
        )
        .with_custom_field("verified", true);
    assert!(!provider.resolve("beta", &context).unwrap().value);
    // Rules on attributes need no targeting key; a split on the key does.
    let keyless = EvaluationContext::default().with_custom_field("plan", "pro");
    assert_eq!(
        provider.resolve_string("theme", &keyless).unwrap().value,
        "black"
    );
    let e = provider.resolve_string("ab", &keyless).unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::TargetingKeyMissing);
}

#[tokio::test]
async fn errors_for_every_type() {
    let store = FlagStore::from_json(TYPED).unwrap();
    let provider = GenesisProvider::new(store);
    let ctx = user("u");
    assert_eq!(
        provider.resolve("nope", &ctx).unwrap_err().code,
        EvaluationErrorCode::FlagNotFound
    );
    assert_eq!(
        provider.resolve_string("nope", &ctx).unwrap_err().code,
        EvaluationErrorCode::FlagNotFound
    );
    assert_eq!(
        provider.resolve_int("nope", &ctx).unwrap_err().code,
        EvaluationErrorCode::FlagNotFound
    );
    assert_eq!(
        provider.resolve_float("nope", &ctx).unwrap_err().code,
        EvaluationErrorCode::FlagNotFound
    );
    assert_eq!(
        provider.resolve_struct("nope", &ctx).unwrap_err().code,
        EvaluationErrorCode::FlagNotFound
    );
    assert_eq!(
        provider.resolve("theme", &ctx).unwrap_err().code,
        EvaluationErrorCode::TypeMismatch
    );
    assert_eq!(
        provider.resolve_int("theme", &ctx).unwrap_err().code,
        EvaluationErrorCode::TypeMismatch
    );
    assert_eq!(
        provider.resolve_string("limit", &ctx).unwrap_err().code,
        EvaluationErrorCode::TypeMismatch
    );
    assert_eq!(
        provider.resolve_struct("beta", &ctx).unwrap_err().code,
        EvaluationErrorCode::TypeMismatch
    );
    assert_eq!(
        provider.resolve_int("ratio", &ctx).unwrap_err().code,
        EvaluationErrorCode::TypeMismatch
    );

    let pending = FlagStore::builder().pending();
    let provider = GenesisProvider::new(pending.clone());
    use open_feature::provider::{FeatureProvider, ProviderStatus};
    assert_eq!(provider.status(), ProviderStatus::NotReady);
    assert_eq!(
        provider.resolve("theme", &ctx).unwrap_err().code,
        EvaluationErrorCode::ProviderNotReady
    );
    pending.replace_from_json(TYPED).unwrap();
    assert_eq!(provider.status(), ProviderStatus::Ready);
    assert_eq!(
        provider.resolve_string("theme", &ctx).unwrap().value,
        "white"
    );
}
