#!/bin/bash
# g.sh 'COMMANDS': runs COMMANDS as root in the booted guest (bash -c, login-like env), appends
# the command and its output to transcript.txt
G=$(cat /var/tmp/jobfs-fresh/guest.pid)
printf '\n# %s\n' "$1" >>/var/tmp/jobfs-fresh/transcript.txt
nsenter -t "$G" -a -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root TERM=dumb LANG=C.UTF-8 bash -c "cd /root; $1" 2>&1 | tee -a /var/tmp/jobfs-fresh/transcript.txt
exit "${PIPESTATUS[0]}"
