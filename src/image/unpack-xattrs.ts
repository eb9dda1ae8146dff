// Which extended attributes a layer entry's PAX records ask for, and which of them moat
// writes. Images carry xattrs as SCHILY.xattr.<name>=<bytes> (Go, GNU tar) or
// LIBARCHIVE.xattr.<url-encoded name>=<base64> (bsdtar).

export type XattrResult =
  | { ok: true; xattrs: Array<[string, Buffer]>; notes: string[] }
  | { ok: false; reason: string };

// Extended attributes an image may carry. Others (security.selinux from the build host,
// trusted.*) say nothing about the container and would be a privileged write on the host.
function allowed(name: string): boolean {
  return (
    name.startsWith("user.") ||
    name === "security.capability" ||
    name === "system.posix_acl_access" ||
    name === "system.posix_acl_default"
  );
}

/**
 * The xattrs to set for one entry. `pax` is tar-stream's (UTF-8 decoded) view of the records;
 * `rawPax` the raw bytes of its SCHILY.xattr records (unpack-pax.ts), used when they are
 * exactly what that text was decoded from, which keeps binary values intact.
 */
export function paxXattrs(pax: Record<string, string>, rawPax?: Map<string, Buffer>): XattrResult {
  const xattrs: Array<[string, Buffer]> = [];
  const notes: string[] = [];
  for (const [key, value] of Object.entries(pax)) {
    let attr: string;
    let data: Buffer;
    if (key.startsWith("SCHILY.xattr.")) {
      attr = key.slice("SCHILY.xattr.".length);
      const raw = rawPax?.get(key);
      if (raw !== undefined && raw.toString("utf8") === value) data = raw;
      else if (!value.includes("\uFFFD")) data = Buffer.from(value, "utf8");
      else {
        // Mangled and no raw bytes: dropping the value loses a capability or ACL entry,
        // which only takes rights away; writing mangled bytes could grant the wrong ones.
        notes.push(`binary xattr ${attr} not restored (the tar reader could not carry it)`);
        continue;
      }
    } else if (key.startsWith("LIBARCHIVE.xattr.")) {
      try {
        attr = decodeURIComponent(key.slice("LIBARCHIVE.xattr.".length));
      } catch {
        return { ok: false, reason: `has a malformed PAX record ${JSON.stringify(key)}` };
      }
      data = Buffer.from(value, "base64");
    } else continue;
    if (attr.startsWith("trusted.overlay.") || attr.startsWith("user.overlay.")) {
      return {
        ok: false,
        reason: `sets the overlayfs xattr ${attr}, which could redirect the container's view of other layers`,
      };
    }
    if (attr.length === 0 || attr.includes("\0"))
      return { ok: false, reason: "has an xattr with an invalid name" };
    if (!allowed(attr)) {
      notes.push(
        `xattr ${attr.split(".")[0]}.* not restored (only user.*, security.capability and ACLs are)`,
      );
      continue;
    }
    xattrs.push([attr, data]);
  }
  return { ok: true, xattrs, notes };
}
