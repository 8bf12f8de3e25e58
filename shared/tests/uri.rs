//! Connector URIs through the crate's public API: the forms, the options and their defaults,
//! printing and parsing back, wildcard matching, and an error naming the culprit for each mistake.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use mq_shared::defaults;
use mq_shared::uri::{
    ClientUri, DestinationFilter, DestinationKind, DiscoveryUri, FAILOVER_OPTIONS, FailoverOptions,
    FailoverUri, HostPort, MAX_BACK_OFF_MULTIPLIER, MAX_DELAY_MS, MAX_PREFETCH_SIZE,
    MAX_RECONNECT_ATTEMPTS, MAX_TTL, NETWORK_OPTIONS, NetworkOptions, NetworkUri, PeerUri,
    Redacted, TransportUri, UriError, redact_uri,
};
use proptest::prelude::*;

fn ok<T: FromStr<Err = UriError>>(s: &str) -> T {
    match s.parse() {
        Ok(v) => v,
        Err(e) => panic!("'{s}' should parse, got: {e}"),
    }
}

/// The error text for `s`, which must not parse.
fn err<T: FromStr<Err = UriError> + Debug>(s: &str) -> String {
    match s.parse::<T>() {
        Ok(v) => panic!("'{s}' should not parse, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

fn assert_contains(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "'{text}' should mention '{part}'");
    }
}

/// Each `prefix` + text must fail to parse as `T`, with an error that mentions every part given.
fn rejects<T: FromStr<Err = UriError> + Debug>(prefix: &str, cases: &[(&str, &[&str])]) {
    for (text, parts) in cases {
        assert_contains(&err::<T>(&format!("{prefix}{text}")), parts);
    }
}

fn hp(host: &str, port: u16) -> HostPort {
    HostPort::new(host, port)
}

fn filter(s: &str) -> DestinationFilter {
    match DestinationFilter::parse(s) {
        Ok(f) => f,
        Err(e) => panic!("'{s}' should parse, got: {e}"),
    }
}

fn static_parts(uri: &NetworkUri) -> (&[PeerUri], &NetworkOptions) {
    match uri {
        NetworkUri::Static { peers, options } => (peers, options),
        other => panic!("expected static:, got {other:?}"),
    }
}

// ---- the seed's URI and the defaults -----------------------------------------------------

#[test]
fn seed_static_uri() {
    let uri: NetworkUri = ok(
        "static:(tcp://localhost:61616,tcp://localhost:61617)?maxReconnectDelay=5000&useExponentialBackOff=false",
    );
    let (peers, o) = static_parts(&uri);
    assert_eq!(
        peers,
        &[
            PeerUri::Tcp(hp("localhost", 61616)),
            PeerUri::Tcp(hp("localhost", 61617))
        ]
    );
    assert_eq!(o.max_reconnect_delay_ms, 5000);
    assert!(!o.use_exponential_back_off);
    // Untouched defaults, as ActiveMQ's code has them.
    assert_eq!(o.initial_reconnect_delay_ms, 1000);
    assert_eq!(o.back_off_multiplier, 2.0);
    assert_eq!(o.max_reconnect_attempts, 0);
    assert_eq!(o.min_connect_time_ms, 5000);
    assert_eq!((o.network_ttl, o.message_ttl, o.consumer_ttl), (1, 1, 1));
    assert!(!o.duplex);
    assert!(o.conduit_subscriptions);
    assert!(o.decrease_network_consumer_priority);
    assert!(!o.dynamic_only);
    assert_eq!(o.prefetch_size, 1000);
    assert!(!o.static_bridge);
    assert!(!o.suppress_duplicate_queue_subscriptions);
    assert!(o.excluded_destinations.is_empty());
    assert_eq!((&o.name, &o.user_name, &o.password), (&None, &None, &None));
    assert_eq!(uri.options(), o);
    assert_eq!(
        uri.to_string(),
        "static:(tcp://localhost:61616,tcp://localhost:61617)?maxReconnectDelay=5000&useExponentialBackOff=false"
    );
}

#[test]
fn network_defaults_come_from_defaults_rs() {
    let o = NetworkOptions::default();
    assert_eq!(
        o.initial_reconnect_delay_ms,
        defaults::INITIAL_RECONNECT_DELAY_MS
    );
    assert_eq!(o.max_reconnect_delay_ms, defaults::MAX_RECONNECT_DELAY_MS);
    assert_eq!(
        o.use_exponential_back_off,
        defaults::USE_EXPONENTIAL_BACK_OFF
    );
    assert_eq!(o.back_off_multiplier, defaults::BACK_OFF_MULTIPLIER);
    assert_eq!(o.network_ttl, defaults::NETWORK_TTL);
    assert_eq!(o.duplex, defaults::DUPLEX);
    assert_eq!(o.conduit_subscriptions, defaults::CONDUIT_SUBSCRIPTIONS);
    assert_eq!(o.prefetch_size, defaults::NETWORK_PREFETCH_SIZE);
    let uri: NetworkUri = ok("static:(tcp://a:1)");
    assert_eq!(uri.options(), &o);
}

// ---- every option ------------------------------------------------------------------------------

const EVERY_NETWORK_OPTION: &str = "static:(tcp://a:1)?name=east&initialReconnectDelay=250&maxReconnectDelay=9000\
    &useExponentialBackOff=false&backOffMultiplier=1.5&maxReconnectAttempts=7&minConnectTime=100\
    &networkTTL=4&messageTTL=3&consumerTTL=2&duplex=true&conduitSubscriptions=false\
    &decreaseNetworkConsumerPriority=false&dynamicOnly=true&prefetchSize=50&staticBridge=true\
    &suppressDuplicateQueueSubscriptions=true&excludedDestinations=/queue/A.>, /topic/B\
    &dynamicallyIncludedDestinations=/queue/C.*&staticallyIncludedDestinations=D\
    &userName=bridge&password=s3cret";

#[test]
fn every_network_option() {
    let uri: NetworkUri = ok(EVERY_NETWORK_OPTION);
    let o = uri.options();
    assert_eq!(o.name.as_deref(), Some("east"));
    assert_eq!(o.initial_reconnect_delay_ms, 250);
    assert_eq!(o.max_reconnect_delay_ms, 9000);
    assert!(!o.use_exponential_back_off);
    assert_eq!(o.back_off_multiplier, 1.5);
    assert_eq!(o.max_reconnect_attempts, 7);
    assert_eq!(o.min_connect_time_ms, 100);
    assert_eq!((o.network_ttl, o.message_ttl, o.consumer_ttl), (4, 3, 2));
    assert!(o.duplex);
    assert!(!o.conduit_subscriptions);
    assert!(!o.decrease_network_consumer_priority);
    assert!(o.dynamic_only);
    assert_eq!(o.prefetch_size, 50);
    assert!(o.static_bridge);
    assert!(o.suppress_duplicate_queue_subscriptions);
    assert_eq!(
        o.excluded_destinations,
        vec![filter("/queue/A.>"), filter("/topic/B")]
    );
    assert_eq!(
        o.dynamically_included_destinations,
        vec![filter("/queue/C.*")]
    );
    assert_eq!(o.statically_included_destinations, vec![filter("/queue/D")]);
    assert_eq!(o.user_name.as_deref(), Some("bridge"));
    assert_eq!(o.password.as_deref(), Some("s3cret"));
    assert_eq!(ok::<NetworkUri>(&uri.to_string()), uri);
}

#[test]
fn to_map_lists_every_option_by_activemq_name_and_masks_the_password() {
    let uri: NetworkUri = ok(EVERY_NETWORK_OPTION);
    let map = uri.options().to_map();
    let keys: BTreeSet<&str> = map.keys().map(String::as_str).collect();
    let names: BTreeSet<&str> = NETWORK_OPTIONS.iter().copied().collect();
    assert_eq!(keys, names);
    assert_eq!(map["password"], "***");
    assert_eq!(map["excludedDestinations"], "/queue/A.>,/topic/B");
    assert_eq!(map["backOffMultiplier"], "1.5");
    assert_eq!(map["networkTTL"], "4");

    let defaults = NetworkOptions::default().to_map();
    assert!(!defaults.contains_key("name") && !defaults.contains_key("password"));
    assert_eq!(defaults["initialReconnectDelay"], "1000");
    assert_eq!(defaults["backOffMultiplier"], "2");
    assert_eq!(defaults["decreaseNetworkConsumerPriority"], "true");
    assert_eq!(defaults["excludedDestinations"], "");
}

#[test]
fn each_network_option_name_is_accepted_alone() {
    for name in NETWORK_OPTIONS {
        let value = match *name {
            "name" | "userName" | "password" => "x",
            "useExponentialBackOff"
            | "duplex"
            | "conduitSubscriptions"
            | "dynamicOnly"
            | "decreaseNetworkConsumerPriority"
            | "staticBridge"
            | "suppressDuplicateQueueSubscriptions" => "true",
            "excludedDestinations"
            | "dynamicallyIncludedDestinations"
            | "staticallyIncludedDestinations" => "/topic/X.>",
            _ => "3",
        };
        let _: NetworkUri = ok(&format!("static:(tcp://a:1)?{name}={value}"));
        let _: NetworkUri = ok(&format!("multicast://default?{name}={value}"));
    }
}

#[test]
fn network_ttl_sets_message_and_consumer_ttl_unless_given() {
    let o = |q: &str| {
        ok::<NetworkUri>(&format!("static:(tcp://a:1)?{q}"))
            .options()
            .clone()
    };
    let all = o("networkTTL=3");
    assert_eq!(
        (all.network_ttl, all.message_ttl, all.consumer_ttl),
        (3, 3, 3)
    );
    let message = o("networkTTL=3&messageTTL=5");
    assert_eq!((message.message_ttl, message.consumer_ttl), (5, 3));
    // Order does not matter: an explicit TTL wins over networkTTL given later.
    let consumer = o("consumerTTL=1&networkTTL=4");
    assert_eq!((consumer.message_ttl, consumer.consumer_ttl), (4, 1));
    let alone = o("messageTTL=2");
    assert_eq!(
        (alone.network_ttl, alone.message_ttl, alone.consumer_ttl),
        (1, 2, 1)
    );
}

// ---- peers --------------------------------------------------------------------------------------

#[test]
fn masterslave_and_nested_failover_inside_static() {
    let uri: NetworkUri = ok(
        "static:(masterslave:(tcp://m:61616,tcp://s:61617), failover:(tcp://a:1,tcp://b:2)?randomize=false&maxReconnectAttempts=0 ,tcp://c:3)?duplex=true",
    );
    let (peers, o) = static_parts(&uri);
    assert!(o.duplex);
    assert_eq!(peers.len(), 3);
    assert_eq!(
        peers[0],
        PeerUri::MasterSlave(vec![hp("m", 61616), hp("s", 61617)])
    );
    let PeerUri::Failover(f) = &peers[1] else {
        panic!("expected a failover peer, got {:?}", peers[1]);
    };
    assert_eq!(f.endpoints, vec![hp("a", 1), hp("b", 2)]);
    assert!(!f.options.randomize);
    assert_eq!(f.options.max_reconnect_attempts, 0);
    assert_eq!(peers[2], PeerUri::Tcp(hp("c", 3)));
    assert_eq!(peers[1].endpoints(), vec![hp("a", 1), hp("b", 2)]);
    assert_eq!(peers[0].endpoints()[1], hp("s", 61617));
    assert_eq!(
        uri.to_string(),
        "static:(masterslave:(tcp://m:61616,tcp://s:61617),failover:(tcp://a:1,tcp://b:2)?randomize=false&maxReconnectAttempts=0,tcp://c:3)?duplex=true"
    );
}

#[test]
fn activemq_nested_failover_example() {
    // From ActiveMQ's docs (AMQ-3542).
    let uri: NetworkUri = ok(
        "static:(failover:(tcp://a:61616,tcp://b:61616)?maxReconnectAttempts=0)?useExponentialBackOff=false",
    );
    let (peers, o) = static_parts(&uri);
    assert!(!o.use_exponential_back_off);
    let PeerUri::Failover(f) = &peers[0] else {
        panic!("expected a failover peer, got {:?}", peers[0]);
    };
    assert_eq!(f.options.max_reconnect_attempts, 0);
}

#[test]
fn top_level_masterslave_is_a_static_connector_to_one_pair() {
    let uri: NetworkUri = ok("masterslave:(tcp://m:1,tcp://s:2)?networkTTL=2");
    let (peers, o) = static_parts(&uri);
    assert_eq!(peers, &[PeerUri::MasterSlave(vec![hp("m", 1), hp("s", 2)])]);
    assert_eq!(o.network_ttl, 2);
    assert_eq!(ok::<NetworkUri>(&uri.to_string()), uri);
}

#[test]
fn schemes_ignore_case_and_composites_take_slashes() {
    let uri: NetworkUri = ok("STATIC://(STOMP://h:1)");
    assert_eq!(static_parts(&uri).0, &[PeerUri::Tcp(hp("h", 1))]);
    let f: FailoverUri = ok("failover://(tcp://a:1)");
    assert_eq!(f.endpoints, vec![hp("a", 1)]);
    let p: PeerUri = ok("masterslave:(tcp://a:1,tcp://b:2)");
    assert_eq!(p.to_string(), "masterslave:(tcp://a:1,tcp://b:2)");
}

// ---- multicast and transports -------------------------------------------------------------------

#[test]
fn multicast_default_is_activemqs_group() {
    let uri: NetworkUri = ok("multicast://default");
    let NetworkUri::Multicast { discovery, options } = &uri else {
        panic!("expected multicast, got {uri:?}");
    };
    assert_eq!(
        discovery.group_addr,
        SocketAddr::from((Ipv4Addr::new(239, 255, 2, 3), 6155))
    );
    assert_eq!(discovery.group, "default");
    assert_eq!(options, &NetworkOptions::default());
    assert_eq!(uri.to_string(), "multicast://default");
    // The address spelt out is the same group.
    assert_eq!(ok::<NetworkUri>("multicast://239.255.2.3:6155"), uri);
}

#[test]
fn multicast_with_group_and_options() {
    let uri: NetworkUri = ok("multicast://239.1.2.3:7000?group=blue&networkTTL=3&duplex=true");
    let NetworkUri::Multicast { discovery, options } = &uri else {
        panic!("expected multicast, got {uri:?}");
    };
    assert_eq!(discovery.group_addr.to_string(), "239.1.2.3:7000");
    assert_eq!(discovery.group, "blue");
    assert_eq!(options.network_ttl, 3);
    assert!(options.duplex);
    assert_eq!(
        uri.to_string(),
        "multicast://239.1.2.3:7000?group=blue&networkTTL=3&duplex=true"
    );
}

#[test]
fn transport_uris() {
    let t: TransportUri = ok("tcp://127.0.0.1:61613");
    assert_eq!(t.addr, hp("127.0.0.1", 61613));
    assert_eq!(t.discovery, None);
    // stomp:// is an alias; port 0 binds any free port.
    let t: TransportUri = ok("stomp://0.0.0.0:0");
    assert_eq!(t.addr.port, 0);
    assert_eq!(t.to_string(), "tcp://0.0.0.0:0");
    let t: TransportUri = ok("tcp://127.0.0.1:0?discoveryUri=multicast://default");
    assert_eq!(t.discovery, Some(DiscoveryUri::default()));
    assert_eq!(
        t.to_string(),
        "tcp://127.0.0.1:0?discoveryUri=multicast://default"
    );
    let t: TransportUri = ok("tcp://h:1?discoveryUri=multicast://default?group=red");
    assert_eq!(t.discovery.as_ref().map(|d| d.group.as_str()), Some("red"));
    assert_eq!(ok::<TransportUri>(&t.to_string()), t);
    let _: TransportUri = ok(defaults::TRANSPORT_URI);
}

// ---- TLS endpoints ----------------------------------------------------------------------------

fn tls(host: &str, port: u16) -> HostPort {
    HostPort::tls(host, port)
}

#[test]
fn ssl_transports() {
    let t: TransportUri = ok("ssl://0.0.0.0:61614");
    assert_eq!(t.addr, tls("0.0.0.0", 61614));
    assert!(t.is_tls() && !t.need_client_auth);
    assert_eq!(t.to_string(), "ssl://0.0.0.0:61614");
    // stomp+ssl:// is an alias, schemes are case-insensitive, port 0 binds any port.
    let t: TransportUri = ok("STOMP+SSL://127.0.0.1:0?needClientAuth=true");
    assert_eq!(t.addr, tls("127.0.0.1", 0));
    assert!(t.need_client_auth);
    assert_eq!(t.to_string(), "ssl://127.0.0.1:0?needClientAuth=true");
    let t: TransportUri = ok("ssl://h:1?needClientAuth=false");
    assert_eq!(t.to_string(), "ssl://h:1");
    let t: TransportUri =
        ok("ssl://h:1?needClientAuth=true&discoveryUri=multicast://default?group=g&secret=s");
    assert!(t.need_client_auth);
    let d = t.discovery.clone().unwrap_or_default();
    assert_eq!((d.group.as_str(), d.secret.as_deref()), ("g", Some("s")));
    assert_eq!(
        t.to_string(),
        "ssl://h:1?needClientAuth=true&discoveryUri=multicast://default?group=g&secret=s"
    );
    assert_eq!(ok::<TransportUri>(&t.to_string()), t);
    // Without a query of its own, the discovery URI ends at the next `&`.
    let t: TransportUri = ok("ssl://h:1?discoveryUri=multicast://default&needClientAuth=true");
    assert!(t.need_client_auth);
    assert_eq!(t.discovery, Some(DiscoveryUri::default()));
    assert_eq!(
        t.to_string(),
        "ssl://h:1?needClientAuth=true&discoveryUri=multicast://default"
    );
    let tcp: TransportUri = ok("tcp://h:1");
    assert!(!tcp.is_tls());
}

#[test]
fn ssl_transport_options_are_checked() {
    rejects::<TransportUri>(
        "",
        &[
            (
                "tcp://h:1?needClientAuth=true",
                &[
                    "'needClientAuth' applies to ssl:// URIs only",
                    "'tcp://h:1?",
                ],
            ),
            (
                "ssl://h:1?needClientAuth=yes",
                &["'needClientAuth' wants", "'yes'"],
            ),
            (
                "ssl://h:1?needClientAuth=true&needClientAuth=false",
                &["'needClientAuth' given more than once in ssl://"],
            ),
            (
                "ssl://h:1?wantClientAuth=true",
                &[
                    "unknown option 'wantClientAuth' in ssl://",
                    "needClientAuth",
                ],
            ),
            ("ssl://h:1?discoveryUri", &["'discoveryUri' has no value"]),
            // After the discovery URI's own `?`, the rest of the query is its options.
            (
                "ssl://h:1?discoveryUri=multicast://default?group=a&needClientAuth=true",
                &["unknown option 'needClientAuth' in multicast://"],
            ),
            (
                "ssl://h:1?discoveryUri=multicast://default&needClientAuth=true&x=1",
                &["unknown option 'x' in ssl://"],
            ),
            ("ssl://h", &["missing port in 'ssl://h'"]),
            ("ssl:h:1", &["missing '//'"]),
        ],
    );
}

#[test]
fn ssl_peers_and_endpoints_keep_their_scheme() {
    let uri: NetworkUri = ok(
        "static:(ssl://a:1,tcp://b:2,masterslave:(ssl://m:3,stomp+ssl://s:4),failover:(tcp://c:5,ssl://d:6))?userName=u",
    );
    let (peers, _) = static_parts(&uri);
    assert_eq!(peers[0], PeerUri::Tcp(tls("a", 1)));
    assert_eq!(peers[1], PeerUri::Tcp(hp("b", 2)));
    assert_eq!(
        peers[2],
        PeerUri::MasterSlave(vec![tls("m", 3), tls("s", 4)])
    );
    assert_eq!(peers[3].endpoints(), vec![hp("c", 5), tls("d", 6)]);
    assert_eq!(
        uri.to_string(),
        "static:(ssl://a:1,tcp://b:2,masterslave:(ssl://m:3,ssl://s:4),failover:(tcp://c:5,ssl://d:6))?userName=u"
    );
    assert_eq!(ok::<NetworkUri>(&uri.to_string()), uri);
    let top: NetworkUri = ok("masterslave:(ssl://m:1,ssl://s:2)");
    assert_eq!(
        static_parts(&top).0,
        &[PeerUri::MasterSlave(vec![tls("m", 1), tls("s", 2)])]
    );

    let c: ClientUri = ok("ssl://h:1");
    assert_eq!(c, ClientUri::Tcp(tls("h", 1)));
    assert_eq!(c.to_string(), "ssl://h:1");
    let ms: ClientUri = ok("masterslave:(ssl://m:1,tcp://s:2)");
    assert_eq!(ms.endpoints(), vec![tls("m", 1), hp("s", 2)]);
    assert_eq!(
        ms.to_string(),
        "failover:(ssl://m:1,tcp://s:2)?randomize=false"
    );
    assert_eq!(tls("::1", 9).to_uri_string(), "ssl://[::1]:9");
    assert_eq!(hp("h", 9).to_uri_string(), "tcp://h:9");
    // An ssl:// endpoint and a tcp:// one on the same port are different endpoints.
    assert_ne!(tls("h", 1), hp("h", 1));
    // Peers take no options, TLS or not.
    rejects::<NetworkUri>(
        "",
        &[(
            "static:(ssl://a:1?needClientAuth=true)",
            &["'needClientAuth' in ssl://", "it takes no options"],
        )],
    );
}

// ---- secrets ----------------------------------------------------------------------------------

#[test]
fn discovery_secret() {
    let d: DiscoveryUri = ok("multicast://default?secret=k%26y");
    assert_eq!(d.secret.as_deref(), Some("k&y"));
    assert_eq!(d.to_string(), "multicast://default?secret=k%26y");
    assert_eq!(d.redacted().to_string(), "multicast://default?secret=***");
    assert_eq!(ok::<DiscoveryUri>(&d.to_string()), d);
    assert_eq!(DiscoveryUri::default().secret, None);
    let n: NetworkUri = ok("multicast://default?secret=abc&group=g&duplex=true");
    let NetworkUri::Multicast { discovery, .. } = &n else {
        panic!("expected multicast, got {n:?}");
    };
    assert_eq!(discovery.secret.as_deref(), Some("abc"));
    assert_eq!(
        n.to_string(),
        "multicast://default?group=g&secret=abc&duplex=true"
    );
    assert_eq!(ok::<NetworkUri>(&n.to_string()), n);
    rejects::<DiscoveryUri>(
        "multicast://default?",
        &[
            ("secret=", &["'secret'", "non-empty"]),
            ("secret=a&secret=b", &["'secret' given more than once"]),
        ],
    );
    // A static connector has no discovery secret.
    rejects::<NetworkUri>(
        "static:(tcp://a:1)?",
        &[("secret=x", &["unknown option 'secret'"])],
    );
}

#[test]
fn redacted_uris_mask_passwords_and_secrets() {
    let n: NetworkUri = ok(
        "static:(failover:(ssl://a:1,tcp://b:2)?randomize=false,tcp://c:3)?userName=bridge&password=p%26ss&duplex=true",
    );
    let shown = n.redacted().to_string();
    assert_eq!(
        shown,
        "static:(failover:(ssl://a:1,tcp://b:2)?randomize=false,tcp://c:3)?duplex=true&userName=bridge&password=***"
    );
    // Display is unchanged: configurations are saved with it.
    assert!(n.to_string().contains("password=p%26ss"));
    assert_eq!(format!("{:?}", n.redacted()), format!("{shown:?}"));
    let m: NetworkUri = ok("multicast://default?secret=s3&password=p");
    assert_eq!(
        m.redacted().to_string(),
        "multicast://default?secret=***&password=***"
    );
    let t: TransportUri = ok("ssl://h:1?discoveryUri=multicast://default?secret=s3");
    assert_eq!(
        t.redacted().to_string(),
        "ssl://h:1?discoveryUri=multicast://default?secret=***"
    );
    assert_eq!(Redacted(&n).to_string(), shown);
    // The options map masks too.
    assert_eq!(n.options().to_map()["password"], defaults::SECRET_MASK);
    // Raw text, parsed or not.
    assert_eq!(
        redact_uri("static:(tcp://a:1?password=x,tcp://b:2)?password=y"),
        "static:(tcp://a:1?password=***,tcp://b:2)?password=***"
    );
}

#[test]
fn errors_never_show_a_secret() {
    for bad in [
        "static:(tcp://a:1)?password=hunter2&nope=1",
        "static:(tcp://a:1)?password=hunter2&password=hunter2",
        "static:(tcp://a:1) x?password=hunter2",
        "static:(tcp://a:1?password=hunter2)",
        "static:(tcp://a:1)?password=hunter2)",
        "static:(tcp://a:1)?password=%zzhunter2",
        "multicast://default?secret=hunter2&group=",
        "multicast://10.0.0.1:1?secret=hunter2",
        "ssl://h:1?needClientAuth=maybe&discoveryUri=multicast://default?secret=hunter2",
        "tcp://h:1?needClientAuth=true&discoveryUri=multicast://default?secret=hunter2",
        "http://x?password=hunter2",
    ] {
        let network = bad
            .parse::<NetworkUri>()
            .map(|_| ())
            .map_err(|e| e.to_string());
        let transport = bad
            .parse::<TransportUri>()
            .map(|_| ())
            .map_err(|e| e.to_string());
        for e in [network, transport] {
            let Err(e) = e else {
                continue;
            };
            assert!(!e.contains("hunter2"), "'{bad}' gave '{e}'");
            assert!(!format!("{e:?}").contains("hunter2"), "'{bad}' gave {e:?}");
        }
        assert!(
            bad.parse::<NetworkUri>().is_err() || bad.parse::<TransportUri>().is_err(),
            "{bad}"
        );
    }
}

// ---- failover and client URIs ---------------------------------------------------------------------

#[test]
fn failover_defaults() {
    let f: FailoverUri = ok("failover:(tcp://a:1,tcp://b:2)");
    assert_eq!(f.endpoints, vec![hp("a", 1), hp("b", 2)]);
    let o = &f.options;
    assert!(o.randomize);
    assert_eq!(o.initial_reconnect_delay_ms, 10);
    assert_eq!(o.max_reconnect_delay_ms, 30_000);
    assert!(o.use_exponential_back_off);
    assert_eq!(o.back_off_multiplier, 2.0);
    assert_eq!(o.max_reconnect_attempts, -1);
    assert_eq!(o.startup_max_reconnect_attempts, -1);
    assert_eq!(o.timeout_ms, -1);
    assert!(!o.priority_backup);
    assert_eq!(o, &FailoverOptions::default());
    assert_eq!(f.to_string(), "failover:(tcp://a:1,tcp://b:2)");
}

#[test]
fn every_failover_option() {
    let f: FailoverUri = ok(
        "failover:(tcp://a:1,tcp://b:2)?randomize=false&initialReconnectDelay=20&maxReconnectDelay=500\
         &useExponentialBackOff=false&backOffMultiplier=3&maxReconnectAttempts=0\
         &startupMaxReconnectAttempts=5&timeout=3000&priorityBackup=true",
    );
    let o = &f.options;
    assert!(!o.randomize);
    assert_eq!(o.initial_reconnect_delay_ms, 20);
    assert_eq!(o.max_reconnect_delay_ms, 500);
    assert!(!o.use_exponential_back_off);
    assert_eq!(o.back_off_multiplier, 3.0);
    assert_eq!(o.max_reconnect_attempts, 0);
    assert_eq!(o.startup_max_reconnect_attempts, 5);
    assert_eq!(o.timeout_ms, 3000);
    assert!(o.priority_backup);
    assert_eq!(ok::<FailoverUri>(&f.to_string()), f);
    // Every documented name is accepted.
    for name in FAILOVER_OPTIONS {
        let value = match *name {
            "randomize" | "useExponentialBackOff" | "priorityBackup" => "true",
            _ => "4",
        };
        let _: FailoverUri = ok(&format!("failover:(tcp://a:1)?{name}={value}"));
    }
    let keys: BTreeSet<String> = o.to_map().into_keys().collect();
    assert!(keys.contains("backOffMultiplier") && !keys.contains("reconnectDelayExponent"));
}

#[test]
fn reconnect_delay_exponent_is_back_off_multiplier() {
    let f: FailoverUri = ok("failover:(tcp://a:1)?reconnectDelayExponent=1.5");
    assert_eq!(f.options.back_off_multiplier, 1.5);
    assert_eq!(f.to_string(), "failover:(tcp://a:1)?backOffMultiplier=1.5");
}

#[test]
fn failover_bare_list_form() {
    let f: FailoverUri = ok("failover:tcp://a:1, tcp://b:2?randomize=false");
    assert_eq!(f.endpoints, vec![hp("a", 1), hp("b", 2)]);
    assert!(!f.options.randomize);
    assert_eq!(
        f.to_string(),
        "failover:(tcp://a:1,tcp://b:2)?randomize=false"
    );
}

#[test]
fn client_uris() {
    assert_eq!(
        ok::<ClientUri>("tcp://localhost:61613"),
        ClientUri::Tcp(hp("localhost", 61613))
    );
    assert_eq!(ok::<ClientUri>("stomp://h:1"), ClientUri::Tcp(hp("h", 1)));
    let ClientUri::Failover(f) = ok::<ClientUri>("failover:(tcp://a:1,tcp://b:2)") else {
        panic!("expected failover");
    };
    assert!(f.options.randomize);
    // masterslave: is a failover that tries the master first.
    let ms: ClientUri = ok("masterslave:(tcp://m:1,tcp://s:2)");
    let ClientUri::Failover(f) = &ms else {
        panic!("expected failover, got {ms:?}");
    };
    assert!(!f.options.randomize);
    assert_eq!(ms.endpoints(), vec![hp("m", 1), hp("s", 2)]);
    assert_eq!(
        ms.to_string(),
        "failover:(tcp://m:1,tcp://s:2)?randomize=false"
    );
    assert_eq!(ok::<ClientUri>(&ms.to_string()), ms);
}

// ---- IPv6 -------------------------------------------------------------------------------------------

#[test]
fn ipv6_hosts_are_bracketed() {
    let t: TransportUri = ok("tcp://[::1]:61613");
    assert_eq!(t.addr.host, "::1");
    assert_eq!(t.addr.to_addr_string(), "[::1]:61613");
    assert_eq!(t.to_string(), "tcp://[::1]:61613");
    // Stored in canonical form, so equal addresses compare equal.
    let c: ClientUri = ok("tcp://[0:0:0:0:0:0:0:1]:2");
    assert_eq!(c, ClientUri::Tcp(hp("::1", 2)));
    let uri: NetworkUri = ok("static:(tcp://[fe80::1]:1,failover:(tcp://[::1]:2,tcp://h:3))");
    assert_eq!(ok::<NetworkUri>(&uri.to_string()), uri);
    assert_eq!(hp("127.0.0.1", 5).to_addr_string(), "127.0.0.1:5");
    rejects::<ClientUri>(
        "",
        &[
            ("tcp://::1:61613", &["'::1:61613'", "bracketed"]),
            ("tcp://[::g]:1", &["'[::g]'", "IPv6"]),
            ("tcp://[::1:1", &["'[::1:1'", "']'"]),
            ("tcp://[::1]", &["missing port", "'tcp://[::1]'"]),
        ],
    );
}

// ---- printing and parsing back ------------------------------------------------------------------

#[test]
fn display_round_trips() {
    let network = [
        "static:(tcp://localhost:61616,tcp://localhost:61617)?maxReconnectDelay=5000&useExponentialBackOff=false",
        "static:(tcp://a:1)",
        "static:(failover:(tcp://a:1,tcp://b:2)?randomize=false,tcp://c:3)",
        "static:(masterslave:(tcp://a:1,tcp://b:2))?networkTTL=2&messageTTL=1",
        "static:(tcp://a:1)?excludedDestinations=/queue/A.>,/topic/*.PRICE&staticallyIncludedDestinations=/queue/X",
        "static:(tcp://a:1)?name=a%2Cb%26c%3D%20d&password=",
        "multicast://default?group=g&duplex=true",
        EVERY_NETWORK_OPTION,
    ];
    for s in network {
        let uri: NetworkUri = ok(s);
        let printed = uri.to_string();
        assert_eq!(ok::<NetworkUri>(&printed), uri, "{s} printed as {printed}");
        assert_eq!(ok::<NetworkUri>(&printed).to_string(), printed);
    }
    let client = [
        "tcp://h:1",
        "failover:(tcp://a:1)?timeout=5&priorityBackup=true",
    ];
    for s in client {
        assert_eq!(ok::<ClientUri>(s).to_string(), s);
    }
    let discovery: DiscoveryUri = ok("multicast://239.9.9.9:9?group=a%26b");
    assert_eq!(discovery.group, "a&b");
    assert_eq!(ok::<DiscoveryUri>(&discovery.to_string()), discovery);
}

#[test]
fn escaped_values_are_decoded() {
    let uri: NetworkUri = ok("static:(tcp://a:1)?name=a%2Cb%26c%3D%20d&userName=%C3%A9");
    let o = uri.options();
    assert_eq!(o.name.as_deref(), Some("a,b&c= d"));
    assert_eq!(o.user_name.as_deref(), Some("é"));
    assert_eq!(o.password, None);
    assert_eq!(
        uri.to_string(),
        "static:(tcp://a:1)?name=a%2Cb%26c%3D%20d&userName=é"
    );
}

// ---- destination filters ---------------------------------------------------------------------------

#[test]
fn wildcards_match_like_activemq() {
    let orders = filter("/queue/ORDERS.>");
    assert!(orders.matches("/queue/ORDERS.EU"));
    assert!(orders.matches("/queue/ORDERS.EU.DE"));
    assert!(!orders.matches("/queue/ORDERS"));
    assert!(!orders.matches("/queue/ORDERSX.EU"));
    assert!(!orders.matches("/topic/ORDERS.EU"));

    let price = filter("/topic/*.PRICE");
    assert!(price.matches("/topic/IBM.PRICE"));
    assert!(!price.matches("/topic/PRICE"));
    assert!(!price.matches("/topic/IBM.NYSE.PRICE"));
    assert!(!price.matches("/queue/IBM.PRICE"));

    let everything = filter("/topic/>");
    assert!(everything.matches("/topic/A") && everything.matches("/topic/A.B.C"));

    let exact = filter("/queue/A.B");
    assert!(exact.matches("/queue/A.B"));
    assert!(!exact.matches("/queue/A.B.C") && !exact.matches("/queue/A"));

    let middle = filter("/queue/A.*.C");
    assert!(middle.matches("/queue/A.B.C") && !middle.matches("/queue/A.B.D"));

    // Wildcards are whole segments only.
    let literal = filter("/queue/A*");
    assert!(literal.matches("/queue/A*") && !literal.matches("/queue/AB"));

    // A bare name is a queue, in filters and in destinations.
    let bare = filter("JOBS.*");
    assert_eq!(bare.kind(), DestinationKind::Queue);
    assert_eq!(bare.pattern(), "JOBS.*");
    assert_eq!(bare.to_string(), "/queue/JOBS.*");
    assert!(bare.matches("/queue/JOBS.1") && bare.matches("JOBS.1"));
    assert!(!bare.matches("/temp-queue/JOBS.1"));
    assert_eq!(filter("/topic/X").kind(), DestinationKind::Topic);
}

#[test]
fn allows_dynamic_and_is_static() {
    let uri: NetworkUri = ok(
        "static:(tcp://a:1)?excludedDestinations=/queue/ORDERS.SECRET.>&dynamicallyIncludedDestinations=/queue/ORDERS.>,/topic/>\
         &staticallyIncludedDestinations=/queue/ORDERS.SECRET.AUDIT",
    );
    let o = uri.options();
    assert!(o.allows_dynamic("/queue/ORDERS.EU"));
    assert!(o.allows_dynamic("/topic/NEWS"));
    assert!(!o.allows_dynamic("/queue/ORDERS.SECRET.AUDIT"));
    assert!(!o.allows_dynamic("/queue/OTHER"));
    // Static includes ignore exclusions.
    assert!(o.is_static("/queue/ORDERS.SECRET.AUDIT"));
    assert!(!o.is_static("/queue/ORDERS.EU"));

    let open = NetworkOptions::default();
    assert!(open.allows_dynamic("/queue/ANY") && open.allows_dynamic("/topic/ANY"));
    assert!(!open.is_static("/queue/ANY"));

    let static_bridge = ok::<NetworkUri>("static:(tcp://a:1)?staticBridge=true");
    assert!(!static_bridge.options().allows_dynamic("/queue/ANY"));
}

// ---- errors name the culprit ------------------------------------------------------------------------

#[test]
fn unknown_options_are_errors() {
    rejects::<NetworkUri>(
        "",
        &[
            (
                "static:(tcp://a:1)?maxReconectDelay=5000",
                &[
                    "unknown option 'maxReconectDelay' in static:(...)",
                    "did you mean 'maxReconnectDelay'?",
                    "known: name, initialReconnectDelay,",
                ],
            ),
            // Option names are case-sensitive, as ActiveMQ spells them.
            (
                "static:(tcp://a:1)?networkttl=2",
                &["'networkttl'", "did you mean 'networkTTL'?"],
            ),
            (
                "multicast://default?grup=x",
                &["'grup' in multicast://", "did you mean 'group'?"],
            ),
            (
                "static:(masterslave:(tcp://a:1,tcp://b:2)?duplex=true)",
                &["'duplex' in masterslave:(...)", "takes no options"],
            ),
            // ActiveMQ options mq does not implement say so.
            (
                "static:(tcp://a:1)?bridgeTempDestinations=true",
                &["'bridgeTempDestinations'", "not supported"],
            ),
        ],
    );
    rejects::<FailoverUri>(
        "failover:(tcp://a:1)?",
        &[
            (
                "randomise=false",
                &["'randomise' in failover:(...)", "'randomize'"],
            ),
            (
                "backup=true",
                &["'backup'", "not supported", "failover:(...)"],
            ),
        ],
    );
    rejects::<TransportUri>(
        "tcp://h:1?",
        &[(
            "maximumConnections=10",
            &["'maximumConnections' in tcp://", "known: discoveryUri"],
        )],
    );
    rejects::<ClientUri>(
        "tcp://h:1?",
        &[(
            "wireFormat.maxInactivityDuration=0",
            &["'wireFormat.maxInactivityDuration'", "takes no options"],
        )],
    );
}

#[test]
fn bad_values_are_errors() {
    assert_eq!(
        err::<NetworkUri>("static:(tcp://a:1)?networkTTL=abc"),
        "option 'networkTTL' wants a whole number from 0 to 255, got 'abc'"
    );
    rejects::<NetworkUri>(
        "static:(tcp://a:1)?",
        &[
            ("networkTTL=-1", &["'networkTTL'", "'-1'"]),
            ("duplex=yes", &["'duplex' wants true or false, got 'yes'"]),
            ("duplex=TRUE", &["'duplex'", "'TRUE'"]),
            (
                "maxReconnectDelay=5s",
                &["'maxReconnectDelay'", "milliseconds", "'5s'"],
            ),
            (
                "backOffMultiplier=0.5",
                &["'backOffMultiplier'", "from 1 to 1000", "'0.5'"],
            ),
            ("backOffMultiplier=NaN", &["'backOffMultiplier'", "'NaN'"]),
            (
                "prefetchSize=0",
                &["'prefetchSize'", "from 1 to 32767", "'0'"],
            ),
            (
                "maxReconnectAttempts=-2",
                &["'maxReconnectAttempts'", "'-2'"],
            ),
            ("name=", &["'name'", "non-empty"]),
            ("name=a%zz", &["'name'", "%XX", "'a%zz'"]),
            ("duplex", &["option 'duplex' has no value"]),
            (
                "duplex=true&duplex=false",
                &["'duplex' given more than once in static:(...)"],
            ),
        ],
    );
    rejects::<FailoverUri>(
        "failover:(tcp://a:1)?",
        &[
            (
                "backOffMultiplier=2&reconnectDelayExponent=3",
                &["backOffMultiplier", "more than once"],
            ),
            ("timeout=soon", &["'timeout'", "'soon'"]),
            ("randomize=1", &["'randomize'", "'1'"]),
        ],
    );
}

#[test]
fn numbers_out_of_range_are_errors_naming_the_option_and_the_range() {
    const DELAY: &str = "from 0 to 86400000";
    const ATTEMPTS: &str = "from -1 to 2147483647";
    const MULTIPLIER: &str = "from 1 to 1000";
    // This one used to reach the bridge and panic in its back-off.
    assert_eq!(
        err::<NetworkUri>(
            "static:(tcp://127.0.0.1:61613)?backOffMultiplier=1e21&maxReconnectDelay=100"
        ),
        "option 'backOffMultiplier' wants a number from 1 to 1000, got '1e21'"
    );
    let network: &[(&str, &[&str])] = &[
        (
            "backOffMultiplier=inf",
            &["'backOffMultiplier'", MULTIPLIER, "'inf'"],
        ),
        (
            "backOffMultiplier=-inf",
            &["'backOffMultiplier'", MULTIPLIER],
        ),
        (
            "backOffMultiplier=1000.5",
            &["'backOffMultiplier'", MULTIPLIER],
        ),
        ("backOffMultiplier=+2", &["'backOffMultiplier'", "'+2'"]),
        (
            "initialReconnectDelay=86400001",
            &["'initialReconnectDelay'", DELAY, "'86400001'"],
        ),
        (
            "maxReconnectDelay=18446744073709551616",
            &["'maxReconnectDelay'", DELAY],
        ),
        ("minConnectTime=86400001", &["'minConnectTime'", DELAY]),
        (
            "maxReconnectAttempts=2147483648",
            &["'maxReconnectAttempts'", ATTEMPTS],
        ),
        (
            "networkTTL=256",
            &["'networkTTL'", "from 0 to 255", "'256'"],
        ),
        ("messageTTL=256", &["'messageTTL'", "from 0 to 255"]),
        (
            "consumerTTL=4294967296",
            &["'consumerTTL'", "from 0 to 255"],
        ),
        (
            "prefetchSize=32768",
            &["'prefetchSize'", "from 1 to 32767", "'32768'"],
        ),
    ];
    rejects::<NetworkUri>("static:(tcp://127.0.0.1:61613)?", network);
    rejects::<NetworkUri>("multicast://default?", network);
    rejects::<NetworkUri>("masterslave:(tcp://a:1,tcp://b:2)?", network);
    let failover: &[(&str, &[&str])] = &[
        (
            "initialReconnectDelay=86400001",
            &["'initialReconnectDelay'", DELAY],
        ),
        (
            "maxReconnectDelay=99999999999",
            &["'maxReconnectDelay'", DELAY],
        ),
        (
            "backOffMultiplier=1e21",
            &["'backOffMultiplier'", MULTIPLIER],
        ),
        (
            "reconnectDelayExponent=NaN",
            &["'reconnectDelayExponent'", MULTIPLIER],
        ),
        (
            "maxReconnectAttempts=2147483648",
            &["'maxReconnectAttempts'", ATTEMPTS],
        ),
        (
            "startupMaxReconnectAttempts=-2",
            &["'startupMaxReconnectAttempts'", ATTEMPTS],
        ),
        ("timeout=86400001", &["'timeout'", "-1 (no limit)", DELAY]),
        ("timeout=-2", &["'timeout'", "'-2'"]),
    ];
    rejects::<FailoverUri>("failover:(tcp://a:1)?", failover);
    rejects::<ClientUri>("failover:(tcp://a:1)?", failover);
    // A failover nested in a static list is checked alike.
    rejects::<NetworkUri>(
        "static:(failover:(tcp://a:1)?",
        &[(
            "backOffMultiplier=1e21)",
            &["'backOffMultiplier'", MULTIPLIER],
        )],
    );
}

#[test]
fn numbers_at_their_bounds_are_accepted() {
    let uri: NetworkUri = ok(&format!(
        "static:(tcp://a:1)?initialReconnectDelay={MAX_DELAY_MS}&maxReconnectDelay={MAX_DELAY_MS}\
         &minConnectTime={MAX_DELAY_MS}&backOffMultiplier={MAX_BACK_OFF_MULTIPLIER}\
         &maxReconnectAttempts={MAX_RECONNECT_ATTEMPTS}&networkTTL={MAX_TTL}&prefetchSize={MAX_PREFETCH_SIZE}"
    ));
    let o = uri.options();
    assert_eq!(o.max_reconnect_delay_ms, MAX_DELAY_MS);
    assert_eq!(o.back_off_multiplier, MAX_BACK_OFF_MULTIPLIER);
    assert_eq!(o.max_reconnect_attempts, MAX_RECONNECT_ATTEMPTS);
    assert_eq!(
        (o.message_ttl, o.prefetch_size),
        (MAX_TTL, MAX_PREFETCH_SIZE)
    );
    let low: NetworkUri = ok(
        "static:(tcp://a:1)?initialReconnectDelay=0&backOffMultiplier=1\
        &maxReconnectAttempts=-1&networkTTL=0&prefetchSize=1",
    );
    assert_eq!(low.options().back_off_multiplier, 1.0);
    let f: FailoverUri = ok(&format!(
        "failover:(tcp://a:1)?timeout={MAX_DELAY_MS}&startupMaxReconnectAttempts=-1&backOffMultiplier=1.5e2"
    ));
    assert_eq!(f.options.timeout_ms, MAX_DELAY_MS as i64);
    assert_eq!(f.options.back_off_multiplier, 150.0);
}

#[test]
fn bad_destinations_are_errors() {
    rejects::<NetworkUri>(
        "static:(tcp://a:1)?excludedDestinations=",
        &[
            (
                "/queue/A.>.B",
                &["'/queue/A.>.B'", "'>' may only be the last"],
            ),
            ("/queue/A,,/queue/B", &["bad destination filter", "empty"]),
            ("/exchange/A", &["'/exchange/A'", "/queue/NAME"]),
            ("/topic/", &["'/topic/'", "empty name"]),
            ("/queue/A..B", &["'/queue/A..B'", "empty segment"]),
        ],
    );
    // An empty value is an empty list.
    let uri: NetworkUri = ok("static:(tcp://a:1)?excludedDestinations=");
    assert!(uri.options().excluded_destinations.is_empty());
}

#[test]
fn unbalanced_parentheses_are_errors() {
    assert_eq!(
        err::<NetworkUri>("static:(tcp://a:1"),
        "missing ')' in 'static:(tcp://a:1'"
    );
    rejects::<NetworkUri>(
        "",
        &[
            (
                "static:(failover:(tcp://a:1,tcp://b:2)",
                &["missing ')'", "'static:(failover:(tcp://a:1,tcp://b:2)'"],
            ),
            (
                "static:(tcp://a:1))",
                &["unmatched ')'", "'static:(tcp://a:1))'"],
            ),
            (
                "static:tcp://a:1",
                &["missing '(' after 'static:'", "'static:tcp://a:1'"],
            ),
            (
                "static:(tcp://a:1)duplex=true",
                &["unexpected 'duplex=true' after ')'", "'?'"],
            ),
        ],
    );
    rejects::<ClientUri>("", &[("failover:(tcp://a:1", &["missing ')'"])]);
}

#[test]
fn empty_lists_are_errors() {
    assert_eq!(err::<NetworkUri>("static:()"), "empty list in 'static:()'");
    assert_eq!(err::<NetworkUri>("  "), "empty URI");
    rejects::<NetworkUri>(
        "",
        &[
            ("static:( )?duplex=true", &["empty list"]),
            (
                "static:(tcp://a:1,,tcp://b:2)",
                &["empty entry", "'static:(tcp://a:1,,tcp://b:2)'"],
            ),
            ("static:(tcp://a:1,)", &["empty entry"]),
        ],
    );
    rejects::<FailoverUri>("", &[("failover:()", &["empty list in 'failover:()'"])]);
    rejects::<ClientUri>(
        "",
        &[("masterslave:()", &["empty list in 'masterslave:()'"])],
    );
}

#[test]
fn bad_schemes_are_errors() {
    rejects::<NetworkUri>(
        "",
        &[
            (
                "http://a:1",
                &["unknown scheme 'http' in 'http://a:1'", "static:(...)"],
            ),
            (
                "static:(http://a:1)",
                &["unknown scheme 'http' in 'http://a:1'", "tcp://"],
            ),
            (
                "static:(static:(tcp://a:1))",
                &["unknown scheme 'static' in 'static:(tcp://a:1)'"],
            ),
            (
                "static:(failover:(masterslave:(tcp://a:1)))",
                &[
                    "unknown scheme 'masterslave'",
                    "tcp://, stomp://, ssl:// or stomp+ssl://",
                ],
            ),
            ("tcp://a:1", &["unknown scheme 'tcp'"]),
        ],
    );
    rejects::<TransportUri>(
        "",
        &[
            ("failover:(tcp://a:1)", &["unknown scheme 'failover'"]),
            ("udp://h:1", &["unknown scheme 'udp'"]),
            (
                "tcp://h:1?discoveryUri=zeroconf://x",
                &["unknown scheme 'zeroconf'", "multicast://"],
            ),
        ],
    );
    rejects::<ClientUri>(
        "",
        &[
            (
                "localhost:61613",
                &["missing scheme in 'localhost:61613'", "tcp://"],
            ),
            ("127.0.0.1:61613", &["missing scheme"]),
            ("tcp:h:1", &["missing '//' after 'tcp:'", "'tcp:h:1'"]),
        ],
    );
}

#[test]
fn bad_ports_and_hosts_are_errors() {
    assert_eq!(
        err::<ClientUri>("tcp://h:x"),
        "bad port 'x' in 'tcp://h:x' (want a number from 1 to 65535)"
    );
    assert_eq!(
        err::<NetworkUri>("static:(tcp://localhost)"),
        "missing port in 'tcp://localhost' (write host:port)"
    );
    rejects::<TransportUri>(
        "",
        &[
            ("tcp://h:70000", &["bad port '70000' in 'tcp://h:70000'"]),
            ("tcp://h:-1", &["bad port '-1'"]),
            ("tcp://h:+1", &["bad port '+1'"]),
            ("tcp://h:1/", &["bad port '1/'"]),
            (
                "tcp://h?discoveryUri=multicast://default",
                &["missing port in 'tcp://h'"],
            ),
        ],
    );
    rejects::<NetworkUri>(
        "",
        &[
            // Port 0 is for transports only: a peer needs a real port.
            (
                "static:(tcp://a:1,tcp://b:0)",
                &["bad port '0' in 'tcp://b:0'", "from 1"],
            ),
            (
                "static:(tcp://a:1,tcp://b:x1)?duplex=true",
                &["bad port 'x1' in 'tcp://b:x1'"],
            ),
        ],
    );
    rejects::<ClientUri>(
        "",
        &[
            ("failover:(tcp://a:0)", &["bad port '0'"]),
            ("tcp://h:", &["missing port in 'tcp://h:'"]),
            ("tcp://:1", &["missing host in 'tcp://:1'"]),
            ("tcp://user@h:1", &["bad host 'user@h' in 'tcp://user@h:1'"]),
            ("tcp://300.1.1.1:1", &["bad host '300.1.1.1'", "IPv4"]),
        ],
    );
}

#[test]
fn bad_multicast_groups_are_errors() {
    rejects::<NetworkUri>(
        "multicast://",
        &[
            (
                "10.0.0.1:6155",
                &["bad multicast group '10.0.0.1:6155'", "239.255.2.3:6155"],
            ),
            ("somehost:1", &["'somehost:1'"]),
            ("239.1.1.1:0", &["'239.1.1.1:0'"]),
            ("239.1.1.1", &["'239.1.1.1'"]),
        ],
    );
    rejects::<DiscoveryUri>(
        "multicast://default?",
        &[
            ("group=", &["'group'", "non-empty"]),
            ("timeToLive=2", &["'timeToLive'", "not supported"]),
        ],
    );
}

#[test]
fn errors_are_comparable_values() {
    let e = "static:(tcp://a:x)".parse::<NetworkUri>();
    assert_eq!(
        e,
        Err(UriError::BadPort {
            port: "x".into(),
            endpoint: "tcp://a:x".into(),
            want: "a number from 1 to 65535",
        })
    );
}

// ---- property: printing then parsing gives the same connector ------------------------------------------

fn arb_host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,8}(\\.[a-z][a-z0-9]{0,5}){0,2}",
        any::<Ipv4Addr>().prop_map(|ip| ip.to_string()),
        any::<Ipv6Addr>().prop_map(|ip| ip.to_string()),
    ]
}

fn arb_endpoint() -> impl Strategy<Value = HostPort> {
    (arb_host(), 1u16.., any::<bool>()).prop_map(|(host, port, secure)| HostPort {
        host,
        port,
        secure,
    })
}

fn arb_failover_options() -> impl Strategy<Value = FailoverOptions> {
    (
        any::<bool>(),
        0u64..100_000,
        0u64..100_000,
        any::<bool>(),
        1.0f64..100.0,
        -1i64..50,
        -1i64..50,
        -1i64..100_000,
        any::<bool>(),
    )
        .prop_map(|(r, i, m, u, b, a, s, t, p)| FailoverOptions {
            randomize: r,
            initial_reconnect_delay_ms: i,
            max_reconnect_delay_ms: m,
            use_exponential_back_off: u,
            back_off_multiplier: b,
            max_reconnect_attempts: a,
            startup_max_reconnect_attempts: s,
            timeout_ms: t,
            priority_backup: p,
        })
}

fn arb_peer() -> impl Strategy<Value = PeerUri> {
    prop_oneof![
        arb_endpoint().prop_map(PeerUri::Tcp),
        prop::collection::vec(arb_endpoint(), 1..4).prop_map(PeerUri::MasterSlave),
        (
            prop::collection::vec(arb_endpoint(), 1..4),
            arb_failover_options()
        )
            .prop_map(|(endpoints, options)| PeerUri::Failover(FailoverUri { endpoints, options })),
    ]
}

fn arb_filter() -> impl Strategy<Value = DestinationFilter> {
    (
        prop_oneof![Just("/queue/"), Just("/topic/"), Just("")],
        prop::collection::vec(
            prop_oneof!["[A-Za-z0-9_-]{1,6}", Just("*".to_string())],
            1..4,
        ),
        any::<bool>(),
    )
        .prop_map(|(prefix, mut segments, rest)| {
            if rest {
                segments.push(">".into());
            }
            filter(&format!("{prefix}{}", segments.join(".")))
        })
}

fn arb_text() -> impl Strategy<Value = String> {
    // Includes the characters that need escaping.
    "[a-zA-Z0-9 %&,()?#=.é-]{0,10}"
}

fn arb_network_options() -> impl Strategy<Value = NetworkOptions> {
    let names = (
        prop::option::of("[a-zA-Z0-9 %&,()?#=.é-]{1,10}"),
        prop::option::of(arb_text()),
        prop::option::of(arb_text()),
    );
    let reconnect = (
        0u64..100_000,
        0u64..100_000,
        any::<bool>(),
        1.0f64..10.0,
        -1i64..100,
        0u64..100_000,
    );
    let ttls = (
        0u32..10,
        prop::option::of(0u32..10),
        prop::option::of(0u32..10),
    );
    let flags = (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        1usize..10_000,
        any::<bool>(),
        any::<bool>(),
    );
    let lists = (
        prop::collection::vec(arb_filter(), 0..3),
        prop::collection::vec(arb_filter(), 0..3),
        prop::collection::vec(arb_filter(), 0..3),
    );
    (names, reconnect, ttls, flags, lists).prop_map(
        |(
            (name, user_name, password),
            (initial, max, exp, mult, attempts, min_connect),
            (network_ttl, message_ttl, consumer_ttl),
            (duplex, conduit, decrease, dynamic_only, prefetch, static_bridge, suppress),
            (excluded, dynamic, statically),
        )| NetworkOptions {
            name,
            initial_reconnect_delay_ms: initial,
            max_reconnect_delay_ms: max,
            use_exponential_back_off: exp,
            back_off_multiplier: mult,
            max_reconnect_attempts: attempts,
            min_connect_time_ms: min_connect,
            network_ttl,
            message_ttl: message_ttl.unwrap_or(network_ttl),
            consumer_ttl: consumer_ttl.unwrap_or(network_ttl),
            duplex,
            conduit_subscriptions: conduit,
            decrease_network_consumer_priority: decrease,
            dynamic_only,
            prefetch_size: prefetch,
            static_bridge,
            suppress_duplicate_queue_subscriptions: suppress,
            excluded_destinations: excluded,
            dynamically_included_destinations: dynamic,
            statically_included_destinations: statically,
            user_name,
            password,
        },
    )
}

proptest! {
    #[test]
    fn static_uris_round_trip(
        peers in prop::collection::vec(arb_peer(), 1..5),
        options in arb_network_options(),
    ) {
        let uri = NetworkUri::Static { peers, options };
        let printed = uri.to_string();
        let parsed = printed.parse::<NetworkUri>();
        prop_assert_eq!(parsed.as_ref(), Ok(&uri), "printed as {}", printed);
        let reprinted = parsed.map(|u| u.to_string());
        prop_assert_eq!(reprinted, Ok(printed));
    }

    #[test]
    fn client_uris_round_trip(
        endpoints in prop::collection::vec(arb_endpoint(), 1..5),
        options in arb_failover_options(),
    ) {
        let uri = ClientUri::Failover(FailoverUri { endpoints, options });
        let printed = uri.to_string();
        prop_assert_eq!(printed.parse::<ClientUri>(), Ok(uri), "printed as {}", printed);
    }

    #[test]
    fn transport_uris_round_trip(
        endpoint in arb_endpoint(),
        zero in any::<bool>(),
        need_client_auth in any::<bool>(),
        websocket in any::<bool>(),
        discovery in prop::option::of((prop::option::of("[a-z]{1,5}"), prop::option::of(arb_text()))),
    ) {
        let mut addr = endpoint;
        if zero {
            addr.port = 0;
        }
        let uri = TransportUri {
            need_client_auth: need_client_auth && addr.secure,
            websocket,
            addr,
            discovery: discovery.map(|(group, secret)| DiscoveryUri {
                group: group.unwrap_or_else(|| "default".into()),
                secret: secret.filter(|s| !s.is_empty()),
                ..DiscoveryUri::default()
            }),
        };
        let printed = uri.to_string();
        prop_assert_eq!(printed.parse::<TransportUri>(), Ok(uri), "printed as {}", printed);
    }

    #[test]
    fn redacted_never_shows_the_password(
        peers in prop::collection::vec(arb_peer(), 1..3),
        options in arb_network_options(),
        password in "[a-zA-Z0-9 %&,()?#=.é-]{6,12}",
    ) {
        let uri = NetworkUri::Static { peers, options: NetworkOptions { password: Some(password.clone()), ..options } };
        let shown = uri.redacted().to_string();
        let printed = uri.to_string();
        prop_assert!(shown.ends_with("password=***"), "{}", shown);
        let raw = format!("password={password}");
        prop_assert!(!shown.contains(&raw));
        // Everything but the password is as printed.
        let kept = printed.rsplit_once("password=").map(|(head, _)| head);
        prop_assert_eq!(shown.rsplit_once("password=").map(|(head, _)| head), kept);
    }

    #[test]
    fn garbage_never_panics(s in "[a-z:/(),?&=%.0-9\\[\\]+@ ]{0,40}") {
        let _ = redact_uri(&s);
        let _ = s.parse::<NetworkUri>();
        let _ = s.parse::<ClientUri>();
        let _ = s.parse::<TransportUri>();
    }
}
