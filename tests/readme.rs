//! The README shows real output: its YAML block must be one of the documents
//! that `netpolc build examples/shop.np` writes, byte for byte.

#[test]
fn readme_yaml_is_real_shop_output() {
    let readme = std::fs::read_to_string("README.md").expect("README.md");
    let start = readme.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let end = start + readme[start..].find("```").expect("closed block");
    let shown = &readme[start..end];

    let (sources, early) = netpolc::source::load(&["examples/shop.np".into()]).expect("shop");
    let out = netpolc::compile(sources, early, &netpolc::Config::default());
    let yaml = out.yaml();
    assert!(
        yaml.split("---\n").any(|doc| doc == shown),
        "README's YAML is not a document of the shop output:\n{shown}"
    );
}

#[test]
fn readme_names_the_two_commands() {
    let readme = std::fs::read_to_string("README.md").expect("README.md");
    assert!(readme.contains("cargo run --release -- build examples/shop.np"));
    assert!(readme.contains("cargo test "));
    let ci = std::fs::read_to_string(".ci/run").expect(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == "cargo test"),
        ".ci/run must run the README's test command"
    );
}
