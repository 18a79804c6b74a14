//! The report as text for a terminal: the lineage tree of every root (indented, iterative), then collisions, off-host use and live credentials.

use super::*;

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("?")
}

fn write_credential(w: &mut dyn Write, c: &Credential, indent: usize) -> io::Result<()> {
    // Iterative, so a long chain cannot overflow the stack.
    let mut stack: Vec<(&Credential, usize)> = vec![(c, indent)];
    while let Some((c, indent)) = stack.pop() {
        let pad = "  ".repeat(indent);
        let branch = if indent >= 2 { "└─ " } else { "" };
        writeln!(
            w,
            "{pad}{branch}{} {}  depth {}{}",
            opt(&c.access_key_id),
            c.session_fingerprint,
            c.lineage_depth.map_or("?".into(), |d| d.to_string()),
            match c.lineage_complete {
                Some(false) => "  (lineage incomplete)",
                _ => "",
            }
        )?;
        let more = " ".repeat(branch.chars().count());
        if let Some(arn) = &c.principal_arn {
            writeln!(w, "{pad}{more}   principal {arn}")?;
        }
        if let Some(by) = &c.issued_by {
            match &c.expiration {
                Some(exp) => writeln!(w, "{pad}{more}   issued by {by}, expires {exp}")?,
                None => writeln!(w, "{pad}{more}   issued by {by}")?,
            }
        }
        if c.calls > 0 {
            let ips = if c.source_ips.is_empty() {
                String::new()
            } else {
                let extra = c.source_ip_count.saturating_sub(c.source_ips.len());
                format!(
                    " from {}{}",
                    c.source_ips.join(", "),
                    if extra > 0 {
                        format!(" (+{extra} more)")
                    } else {
                        String::new()
                    }
                )
            };
            writeln!(
                w,
                "{pad}{more}   {} call(s), {} .. {}{ips}",
                c.calls,
                opt(&c.first_seen),
                opt(&c.last_seen)
            )?;
        } else {
            writeln!(w, "{pad}{more}   no call seen with it")?;
        }
        for child in c.children.iter().rev() {
            stack.push((child, indent + 1));
        }
    }
    Ok(())
}

/// The report as text for a person.
pub fn write_text(w: &mut dyn Write, r: &ReportOut) -> io::Result<()> {
    let t = &r.totals;
    writeln!(w, "credlineage report")?;
    writeln!(
        w,
        "{} records: {} annotated, {} passed through, {} malformed; events {} .. {}",
        t.records,
        t.annotated,
        t.passed_through,
        t.malformed,
        opt(&t.first_event),
        opt(&t.last_event)
    )?;
    writeln!(
        w,
        "key-collision events: {}, off-host EC2 credential uses: {}, uses after expiration: {}",
        t.key_collision_events, t.offhost_events, t.used_after_expiration_events
    )?;

    writeln!(w, "\n== Lineage: {} root(s) ==", r.roots.len())?;
    for root in &r.roots {
        writeln!(
            w,
            "\n{}  [{}]  {} event(s){}, {} .. {}",
            root.lineage_root,
            opt(&root.lineage_root_type),
            root.events,
            if root.keyless_events > 0 {
                format!(" ({} without an access key)", root.keyless_events)
            } else {
                String::new()
            },
            opt(&root.first_seen),
            opt(&root.last_seen)
        )?;
        for c in &root.credentials {
            write_credential(w, c, 1)?;
        }
    }

    writeln!(
        w,
        "\n== Key-ID collisions: {} key(s) ==",
        r.collisions.len()
    )?;
    for c in &r.collisions {
        writeln!(
            w,
            "\n{}  {} event(s) marked, up to {} live credential sets at once",
            c.access_key_id, c.events, c.max_collision_count
        )?;
        for s in &c.credentials {
            writeln!(
                w,
                "  {}  {}  root {}  {} .. {}",
                s.session_fingerprint,
                opt(&s.principal_arn),
                opt(&s.lineage_root),
                opt(&s.first_seen),
                opt(&s.last_seen)
            )?;
        }
    }

    writeln!(
        w,
        "\n== Off-host EC2 credential use: {} ==",
        r.offhost.len()
    )?;
    for o in &r.offhost {
        writeln!(
            w,
            "\n{} used from {} ({})  {} event(s), {} .. {}",
            o.ec2_instance_id,
            if o.source_ip.is_empty() {
                "?"
            } else {
                &o.source_ip
            },
            o.offhost_reason,
            o.events,
            opt(&o.first_seen),
            opt(&o.last_seen)
        )?;
        if !o.event_names.is_empty() {
            writeln!(w, "  calls: {}", o.event_names.join(", "))?;
        }
        for fp in &o.session_fingerprints {
            writeln!(w, "  {fp}")?;
        }
    }

    writeln!(
        w,
        "\n== Temporary credentials live at {}: {} ==",
        opt(&r.live_at),
        r.live.len()
    )?;
    for l in &r.live {
        writeln!(
            w,
            "{} {}  expires {}{}  root {} (depth {}){}",
            l.access_key_id,
            l.session_fingerprint,
            l.expires,
            if l.expiration_observed {
                ""
            } else {
                " (assumed)"
            },
            l.lineage_root,
            l.lineage_depth,
            l.principal_arn
                .as_deref()
                .map(|a| format!("  {a}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}
