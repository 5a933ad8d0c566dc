/*
 * home: where a workdir's files may live, and who can reach them.
 *
 * As root, the servers run as another user (postgres for the clusters,
 * libvirt's qemu user for the guests' disks), who may not be able to walk
 * down to the workdir: a project under /root, a `mktemp -d`. Their files
 * then live in a folder of the workdir's own somewhere that user can
 * reach, named after the workdir so that a later command (`down`, after a
 * killed run) finds it again: <base>/twinstage-<crc of the workdir>.
 *
 * This is the ground of env/: the backends and the pool ask it, it asks
 * nothing of them.
 */
#ifndef TS_HOME_H
#define TS_HOME_H

struct ts_home {
	const char *workdir;	/* absolute */
	const char *user;	/* the server user's name, for messages */
	int as_user;		/* we are root and the servers run as uid/gid */
	unsigned uid, gid;
};

/* "<base>/twinstage-<crc of the workdir>": this workdir's folder elsewhere (new string). */
char *ts_home_outside(const struct ts_home *h, const char *base);
/* Can the server user walk down to path? (Root can; postgres may not.) */
int ts_home_reachable(const struct ts_home *h, const char *path);

#endif
