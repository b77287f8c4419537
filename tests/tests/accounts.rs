//! `pingan-hub users`: web accounts managed from the command line, as an administrator would.

use pingan_hub::access::users::{SESSION_TTL_MS, Users};
use pingan_tests::hub_with_stdin;

/// Runs `pingan-hub users ...` with `stdin` as its standard input.
fn users(data: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    let args: Vec<&str> = std::iter::once("users")
        .chain(args.iter().copied())
        .collect();
    hub_with_stdin(&args, data, stdin)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn accounts_are_added_listed_changed_and_removed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();

    let add = users(
        data,
        &["add", "张书记", "--area", "510722101"],
        "潼川镇平安办2026\n",
    );
    assert!(add.status.success(), "{}", text(&add));
    assert!(text(&add).contains("潼川镇"), "{}", text(&add));

    for (args, input, says) in [
        (
            vec!["add", "张书记", "--area", "510722"],
            "another long password\n",
            "already exists",
        ),
        (
            vec!["add", "李四", "--area", "110101"],
            "another long password\n",
            "unknown area",
        ),
        (
            vec!["add", "李四", "--area", "510722"],
            "short\n",
            "too short",
        ),
        (vec!["remove", "王五"], "", "no user"),
    ] {
        let out = users(data, &args, input);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
    }

    let list = users(data, &["list"], "");
    assert_eq!(String::from_utf8_lossy(&list.stdout), "张书记\t510722101\n");

    // the password set on the command line signs in; a changed one replaces it
    let now = chrono::Utc::now().timestamp_millis();
    {
        let accounts = Users::open(data).unwrap();
        accounts
            .sign_in("张书记", "潼川镇平安办2026", now, SESSION_TTL_MS)
            .expect("the password from standard input");
    }
    let passwd = users(data, &["passwd", "张书记"], "新的密码很长很长\n");
    assert!(passwd.status.success(), "{}", text(&passwd));
    {
        let accounts = Users::open(data).unwrap();
        assert!(accounts.verify("张书记", "潼川镇平安办2026").is_err());
        assert!(accounts.verify("张书记", "新的密码很长很长").is_ok());
    }

    let remove = users(data, &["remove", "张书记"], "");
    assert!(remove.status.success(), "{}", text(&remove));
    let list = users(data, &["list"], "");
    assert!(text(&list).contains("no accounts"), "{}", text(&list));
}
