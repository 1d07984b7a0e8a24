# bash completion for jobfs: verbs, each verb's flags, the values a flag takes (job IDs from
# `jobfs ls --json`, view names from `jobfs policy show --json`, files, the words of a choice).
# Verbs and flags are read from the installed binary's own `jobfs --help`, whose verb table is
# the one the dispatcher uses, so a new verb or flag completes without a change here.
# shellcheck shell=bash

# _jobfs_help JOBFS: the verb lines of `jobfs --help`, "VERB [SUBVERB] USAGE...", one a line.
_jobfs_help()
{
	"$1" --help 2>/dev/null | sed -n 's/^  \([a-z][a-z-]*\)/\1/p'
}

# _jobfs_policy_args: "--policy FILE" when the command line names a policy, so job IDs and view
# names come from that policy's state dir.
_jobfs_policy_args()
{
	local i
	for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
		case ${COMP_WORDS[i]} in
		--policy) printf '%s\n%s\n' --policy "${COMP_WORDS[i + 1]}" ;;
		--policy=*) printf '%s\n%s\n' --policy "${COMP_WORDS[i]#--policy=}" ;;
		esac
	done
}

_jobfs_json_values() # KEY JOBFS ARGS...: each "KEY": "value" of a jobfs --json output
{
	local key=$1
	shift
	"$@" 2>/dev/null | grep -o "\"$key\": *\"[^\"\\\\]*\"" | sed 's/.*: *"\(.*\)"$/\1/'
}

_jobfs_job_ids()
{
	local -a policy
	mapfile -t policy < <(_jobfs_policy_args)
	_jobfs_json_values id "$1" ls --json "${policy[@]}"
}

_jobfs_view_names()
{
	local -a policy
	mapfile -t policy < <(_jobfs_policy_args)
	_jobfs_json_values name "$1" policy show --json "${policy[@]}"
}

_jobfs()
{
	local jobfs=${COMP_WORDS[0]} cur=${COMP_WORDS[COMP_CWORD]} prev=""
	local verb="" sub="" usage="" line word i
	local -a lines subs flags
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	COMPREPLY=()
	mapfile -t lines < <(_jobfs_help "$jobfs")

	if ((COMP_CWORD == 1)); then
		local verbs="--help --version"
		for line in "${lines[@]}"; do
			verbs+=" ${line%% *}"
		done
		mapfile -t COMPREPLY < <(compgen -W "$verbs" -- "$cur" | sort -u)
		return 0
	fi

	verb=${COMP_WORDS[1]}
	# a verb with subverbs ("policy check"): the second word is the subverb
	for line in "${lines[@]}"; do
		read -r -a flags <<<"$line"
		if [ "${flags[0]}" = "$verb" ] && [ "${#flags[@]}" -gt 1 ] &&
			[[ ${flags[1]} =~ ^[a-z][a-z-]*$ ]]; then
			subs+=("${flags[1]}")
		fi
	done
	if ((${#subs[@]})); then
		if ((COMP_CWORD == 2)); then
			mapfile -t COMPREPLY < <(compgen -W "${subs[*]}" -- "$cur")
			return 0
		fi
		sub=${COMP_WORDS[2]}
	fi
	for line in "${lines[@]}"; do
		if [ -n "$sub" ] && [[ $line == "$verb $sub "* || $line == "$verb $sub" ]]; then
			usage=${line#"$verb $sub"}
		elif [ -z "$sub" ] && [[ $line == "$verb "* || $line == "$verb" ]]; then
			usage=${line#"$verb"}
		fi
	done

	# the value of a flag: what follows it in the usage ("--job ID", "--outcome a|b")
	if [[ $prev == --* ]]; then
		read -r -a flags <<<"${usage//[][]/ }"
		for ((i = 0; i < ${#flags[@]}; i++)); do
			[ "${flags[i]}" = "$prev" ] || continue
			word=${flags[i + 1]:-}
			case $word in
			"" | --*) break ;; # a flag without a value
			ID) mapfile -t COMPREPLY < <(compgen -W "$(_jobfs_job_ids "$jobfs")" -- "$cur") ;;
			NAME) mapfile -t COMPREPLY < <(compgen -W "$(_jobfs_view_names "$jobfs")" -- "$cur") ;;
			FILE | DIR) mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
			KEY=VALUE)
				mapfile -t COMPREPLY < <(compgen -W "repository= ref= workflow= job= event=" \
					-- "$cur")
				compopt -o nospace 2>/dev/null
				;;
			*\|*) mapfile -t COMPREPLY < <(compgen -W "${word//|/ }" -- "$cur") ;;
			esac
			return 0
		done
	fi

	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$(grep -o -- '--[a-z][a-z-]*' <<<"$usage" |
			sort -u) --help" -- "$cur")
		return 0
	fi
	# positional arguments: the last word of the usage says what ("ID", "FILE"), unless it is
	# the value of a flag ("[--policy FILE]")
	read -r -a flags <<<"${usage//[][]/ }"
	((${#flags[@]})) || return 0
	word=${flags[${#flags[@]} - 1]}
	if ((${#flags[@]} > 1)) && [[ ${flags[${#flags[@]} - 2]} == --* ]]; then
		word=""
	fi
	case $word in
	ID) mapfile -t COMPREPLY < <(compgen -W "$(_jobfs_job_ids "$jobfs")" -- "$cur") ;;
	FILE) mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
	esac
	return 0
}
complete -F _jobfs jobfs
