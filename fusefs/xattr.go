package fusefs

import (
	"context"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
)

// Extended attributes. The mount keeps none of its own: an entry's
// user.featurefs.* are computed from its manifest row (see fileNode.xattr),
// and every other node has no attributes at all. The answers are chosen for
// the tools that copy trees in and out:
//
//   - getxattr of security.*, system.* and trusted.* answers EOPNOTSUPP on
//     every node. `ls -l` asks for security.selinux and
//     system.posix_acl_access per entry; told "not supported" it stops asking
//     for the rest of the device, where ENODATA costs a round trip per entry.
//     The kernel asks for security.capability before every write and treats
//     EOPNOTSUPP as "no capabilities", so writes go on.
//   - setxattr and removexattr of user.* succeed and change nothing, on every
//     node but the control files: cp -a, rsync -X and tar --xattrs carry the
//     computed attributes back in (and rsync reports every failure, "not
//     supported" included), and the values are recomputed from the content
//     anyway. Nothing is stored, so XATTR_CREATE and XATTR_REPLACE cannot
//     conflict with anything and are accepted alike.
//   - setxattr of the other namespaces answers EOPNOTSUPP, which cp -a takes
//     for "no ACLs here" and falls back to chmod.
//
// Never ENOSYS: the kernel would stop sending that operation for the whole
// mount, hiding user.featurefs.* too.

const userNamespace = "user."

// foreignXattr reports whether name is outside the user namespace, the only
// one the mount answers for.
func foreignXattr(name string) bool { return !strings.HasPrefix(name, userNamespace) }

// getNoXattr answers getxattr on a node without attributes.
func getNoXattr(name string) syscall.Errno {
	if foreignXattr(name) {
		return syscall.EOPNOTSUPP
	}
	return syscall.ENODATA
}

// setNoXattr answers setxattr and removexattr on a node that stores none.
func setNoXattr(name string) syscall.Errno {
	if foreignXattr(name) {
		return syscall.EOPNOTSUPP
	}
	return 0
}

// noXattrs gives a directory the attribute answers above; the directories
// embed it.
type noXattrs struct{}

var (
	_ fs.NodeGetxattrer    = noXattrs{}
	_ fs.NodeListxattrer   = noXattrs{}
	_ fs.NodeSetxattrer    = noXattrs{}
	_ fs.NodeRemovexattrer = noXattrs{}
)

func (noXattrs) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return 0, getNoXattr(attr)
}

func (noXattrs) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) { return 0, 0 }

func (noXattrs) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return setNoXattr(attr)
}

func (noXattrs) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return setNoXattr(attr)
}
