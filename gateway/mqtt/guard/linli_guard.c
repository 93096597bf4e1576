/*
 * linli_guard: Linli's access control inside Mosquitto (plugin API v5, Mosquitto 2.0).
 *
 * Why a plugin: Mosquitto's own password and ACL files refuse quietly (a denied PUBLISH
 * is logged only at debug level, among every other packet), so nobody could tell that a
 * client keeps publishing where it may not, or keeps guessing passwords. This plugin makes
 * the same decisions from one file the gateway writes (gateway/mqtt/acl.py, guard_file),
 * counts every refusal per client, rate-limits wrong passwords per address and user name, and writes
 * the counts to a small file the gateway reads.
 *
 *   plugin_opt_access_file  rules: "super|user NAME $7$ITER$SALT$HASH", "pub|sub NAME FILTER",
 *                           "anon-pub FILTER" (one per line; NAME "-" never matches)
 *   plugin_opt_stats_file   written at most once a second when something changed:
 *                           "denied-pub CLIENT USER COUNT", "denied-sub ...", "refused ADDR COUNT"
 *
 * On reload (SIGHUP) the rules are read again and every client whose user is gone or whose
 * password changed is disconnected at once.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/crypto.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define MAX_LINE 2048
#define BUCKETS 4096
#define MAX_TRACKED 1000
#define FAIL_LIMIT 10        /* wrong passwords from one address ... */
#define FAIL_WINDOW_S 60     /* ... within this window ... */
#define BLOCK_S 300          /* ... refuse every login from it for this long */

struct filter {
	char *topic;
	struct filter *next;
};

struct user {
	char *name;
	char *hash;              /* as written: $7$iterations$salt$digest */
	int super;
	struct filter *pub;
	struct filter *sub;
	struct user *next;       /* hash chain */
};

struct counter {
	char *key;
	char *extra;
	long count;
	long window_fails;
	time_t window_start;
	time_t blocked_until;
	struct counter *next;
};

struct table {
	struct counter *buckets[BUCKETS];
	int size;
};

static mosquitto_plugin_id_t *plugin_id;
static char *access_file;
static char *stats_file;
static struct user *users[BUCKETS];
static struct filter *anon_pub;
static struct table denied_pub, denied_sub, refused, locks;
static int stats_dirty;
static time_t stats_written;

static unsigned long hash_str(const char *s)
{
	unsigned long h = 1469598103934665603UL;
	while(*s){
		h ^= (unsigned char)*s++;
		h *= 1099511628211UL;
	}
	return h % BUCKETS;
}

static void free_filters(struct filter *f)
{
	while(f){
		struct filter *next = f->next;
		free(f->topic);
		free(f);
		f = next;
	}
}

static void free_users(struct user **table)
{
	for(int i = 0; i < BUCKETS; i++){
		struct user *u = table[i];
		while(u){
			struct user *next = u->next;
			free(u->name);
			free(u->hash);
			free_filters(u->pub);
			free_filters(u->sub);
			free(u);
			u = next;
		}
		table[i] = NULL;
	}
}

static struct user *find_user(struct user **table, const char *name)
{
	if(!name) return NULL;
	for(struct user *u = table[hash_str(name)]; u; u = u->next){
		if(!strcmp(u->name, name)) return u;
	}
	return NULL;
}

static void add_filter(struct filter **list, const char *topic)
{
	struct filter *f = calloc(1, sizeof(*f));
	if(!f) return;
	f->topic = strdup(topic);
	f->next = *list;
	*list = f;
}

/* Read the rules into `table`; returns 0, or -1 if the file cannot be read. */
static int load_rules(struct user **table, struct filter **anon)
{
	FILE *fp = fopen(access_file, "r");
	char line[MAX_LINE];
	if(!fp){
		mosquitto_log_printf(MOSQ_LOG_ERR, "linli_guard: cannot read %s", access_file);
		return -1;
	}
	while(fgets(line, sizeof(line), fp)){
		char kind[16], name[128], value[MAX_LINE];
		line[strcspn(line, "\r\n")] = '\0';
		if(line[0] == '#' || line[0] == '\0') continue;
		if(sscanf(line, "anon-pub %2047s", value) == 1 && !strncmp(line, "anon-pub ", 9)){
			add_filter(anon, value);
			continue;
		}
		if(sscanf(line, "%15s %127s %2047s", kind, name, value) != 3) continue;
		if(!strcmp(kind, "super") || !strcmp(kind, "user")){
			struct user *u = calloc(1, sizeof(*u));
			if(!u) continue;
			unsigned long b = hash_str(name);
			u->name = strdup(name);
			u->hash = strdup(value);
			u->super = !strcmp(kind, "super");
			u->next = table[b];
			table[b] = u;
		}else{
			struct user *u = find_user(table, name);
			if(!u) continue;
			if(!strcmp(kind, "pub")) add_filter(&u->pub, value);
			else if(!strcmp(kind, "sub")) add_filter(&u->sub, value);
		}
	}
	fclose(fp);
	return 0;
}

static struct counter *find_counter(struct table *t, const char *key)
{
	for(struct counter *c = t->buckets[hash_str(key)]; c; c = c->next){
		if(!strcmp(c->key, key)) return c;
	}
	return NULL;
}

static struct counter *count(struct table *t, const char *key, const char *extra)
{
	unsigned long b = hash_str(key);
	struct counter *found = find_counter(t, key);
	if(found) return found;
	if(t->size >= MAX_TRACKED) return NULL;  /* bounded: a flood of new ids is not remembered */
	struct counter *c = calloc(1, sizeof(*c));
	if(!c) return NULL;
	c->key = strdup(key);
	c->extra = strdup(extra ? extra : "-");
	c->next = t->buckets[b];
	t->buckets[b] = c;
	t->size++;
	return c;
}

static void write_table(FILE *fp, const char *label, struct table *t, int with_extra)
{
	for(int i = 0; i < BUCKETS; i++){
		for(struct counter *c = t->buckets[i]; c; c = c->next){
			if(!c->count) continue;
			if(with_extra) fprintf(fp, "%s %s %s %ld\n", label, c->key, c->extra, c->count);
			else fprintf(fp, "%s %s %ld\n", label, c->key, c->count);
		}
	}
}

static void write_stats(int force)
{
	time_t now = time(NULL);
	char tmp[4096];
	FILE *fp;
	if(!stats_file || !stats_dirty || (!force && now == stats_written)) return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", stats_file);
	fp = fopen(tmp, "w");
	if(!fp) return;
	write_table(fp, "denied-pub", &denied_pub, 1);
	write_table(fp, "denied-sub", &denied_sub, 1);
	write_table(fp, "refused", &refused, 0);
	fclose(fp);
	rename(tmp, stats_file);
	stats_dirty = 0;
	stats_written = now;
}

static void note(struct table *t, const char *key, const char *extra)
{
	struct counter *c = count(t, key ? key : "-", extra);
	if(c) c->count++;
	stats_dirty = 1;
	write_stats(0);
}

static int matches_any(struct filter *f, const char *topic)
{
	bool match;
	for(; f; f = f->next){
		if(mosquitto_topic_matches_sub(f->topic, topic, &match) == MOSQ_ERR_SUCCESS && match) return 1;
	}
	return 0;
}

/* A subscription is allowed when every topic it can match is readable: it is one of the
 * granted filters, a plain topic a granted filter matches, or lies under a granted "base/#". */
static int covers(struct filter *f, const char *sub)
{
	int wild = strpbrk(sub, "+#") != NULL;
	for(; f; f = f->next){
		size_t n = strlen(f->topic);
		if(!strcmp(f->topic, sub)) return 1;
		if(!wild){
			bool match;
			if(mosquitto_topic_matches_sub(f->topic, sub, &match) == MOSQ_ERR_SUCCESS && match) return 1;
		}else if(n >= 2 && !strcmp(f->topic + n - 2, "/#") && !strncmp(f->topic, sub, n - 1)){
			return 1;
		}
	}
	return 0;
}

static int on_acl(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	const char *name = mosquitto_client_username(ed->client);
	const char *id = mosquitto_client_id(ed->client);
	struct user *u = find_user(users, name);
	(void)event; (void)userdata;

	if(ed->access == MOSQ_ACL_UNSUBSCRIBE) return MOSQ_ERR_SUCCESS;
	if(u && u->super) return MOSQ_ERR_SUCCESS;
	switch(ed->access){
		case MOSQ_ACL_WRITE:
			if(u ? matches_any(u->pub, ed->topic) : (!name && matches_any(anon_pub, ed->topic))){
				return MOSQ_ERR_SUCCESS;
			}
			note(&denied_pub, id, name);
			return MOSQ_ERR_ACL_DENIED;
		case MOSQ_ACL_SUBSCRIBE:
			if(u && covers(u->sub, ed->topic)) return MOSQ_ERR_SUCCESS;
			note(&denied_sub, id, name);
			return MOSQ_ERR_ACL_DENIED;
		case MOSQ_ACL_READ:
			if(u && matches_any(u->sub, ed->topic)) return MOSQ_ERR_SUCCESS;
			return MOSQ_ERR_ACL_DENIED;
		default:
			return MOSQ_ERR_ACL_DENIED;
	}
}

/* PBKDF2-HMAC-SHA512 as mosquitto_passwd writes it: $7$iterations$salt$digest (base64). */
static int password_ok(const char *stored, const char *password)
{
	char copy[512];
	char *iter_s, *salt_b64, *hash_b64, *save = NULL;
	unsigned char salt[128], expected[128], got[64];
	int salt_len, hash_len, iterations;
	if(!stored || !password || strncmp(stored, "$7$", 3) || strlen(stored) >= sizeof(copy)) return 0;
	strcpy(copy, stored + 3);
	iter_s = strtok_r(copy, "$", &save);
	salt_b64 = strtok_r(NULL, "$", &save);
	hash_b64 = strtok_r(NULL, "$", &save);
	if(!iter_s || !salt_b64 || !hash_b64 || strlen(salt_b64) > 160 || strlen(hash_b64) > 160) return 0;
	iterations = atoi(iter_s);
	salt_len = EVP_DecodeBlock(salt, (const unsigned char *)salt_b64, (int)strlen(salt_b64));
	hash_len = EVP_DecodeBlock(expected, (const unsigned char *)hash_b64, (int)strlen(hash_b64));
	if(iterations < 1 || salt_len < 0 || hash_len < 64) return 0;
	/* EVP_DecodeBlock counts base64 padding as zero bytes */
	salt_len -= (int)(strlen(salt_b64) > 0 && salt_b64[strlen(salt_b64) - 1] == '=');
	salt_len -= (int)(strlen(salt_b64) > 1 && salt_b64[strlen(salt_b64) - 2] == '=');
	if(!PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, salt_len, iterations, EVP_sha512(), 64, got)){
		return 0;
	}
	return CRYPTO_memcmp(got, expected, 64) == 0;
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	const char *address = mosquitto_client_address(ed->client);
	char lock_key[256];
	struct counter *lock, *total;
	struct user *u;
	time_t now = time(NULL);
	(void)event; (void)userdata;

	if(!ed->username) return MOSQ_ERR_PLUGIN_DEFER;  /* anonymous: allowed to announce, nothing more */
	if(!address) address = "-";
	u = find_user(users, ed->username);
	/* Locked per address and user name, not per address: a whole network behind one address
	 * (or the gateway itself on 127.0.0.1) is not locked out by one client's guessing. */
	snprintf(lock_key, sizeof(lock_key), "%s/%.128s", address, ed->username);
	lock = find_counter(&locks, lock_key);
	if(lock && lock->blocked_until > now && !(u && u->super && password_ok(u->hash, ed->password))){
		total = count(&refused, address, NULL);
		if(total) total->count++;
		stats_dirty = 1;
		write_stats(0);
		return MOSQ_ERR_AUTH;
	}
	if(u && password_ok(u->hash, ed->password)) return MOSQ_ERR_SUCCESS;
	total = count(&refused, address, NULL);
	if(total) total->count++;
	if(!lock) lock = count(&locks, lock_key, NULL);
	if(lock){
		if(now - lock->window_start > FAIL_WINDOW_S){
			lock->window_start = now;
			lock->window_fails = 0;
		}
		if(++lock->window_fails >= FAIL_LIMIT){
			lock->blocked_until = now + BLOCK_S;
			mosquitto_log_printf(MOSQ_LOG_WARNING,
					"linli_guard: %ld wrong passwords for %s from %s within %ds: refusing them for %ds",
					lock->window_fails, ed->username, address, FAIL_WINDOW_S, BLOCK_S);
		}
	}
	stats_dirty = 1;
	write_stats(0);
	return MOSQ_ERR_AUTH;
}

static int on_tick(int event, void *event_data, void *userdata)
{
	(void)event; (void)event_data; (void)userdata;
	write_stats(0);
	return MOSQ_ERR_SUCCESS;
}

static int on_reload(int event, void *event_data, void *userdata)
{
	struct user *fresh[BUCKETS] = {0};
	struct filter *fresh_anon = NULL;
	(void)event; (void)event_data; (void)userdata;
	if(load_rules(fresh, &fresh_anon) != 0) return MOSQ_ERR_SUCCESS;  /* keep the rules we have */
	for(int i = 0; i < BUCKETS; i++){
		for(struct user *u = users[i]; u; u = u->next){
			struct user *now = find_user(fresh, u->name);
			if(!now || strcmp(now->hash, u->hash)){
				mosquitto_kick_client_by_username(u->name, false);
			}
		}
	}
	free_users(users);
	memcpy(users, fresh, sizeof(users));
	free_filters(anon_pub);
	anon_pub = fresh_anon;
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for(int i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	plugin_id = identifier;
	for(int i = 0; i < option_count; i++){
		if(!strcmp(options[i].key, "access_file")) access_file = strdup(options[i].value);
		if(!strcmp(options[i].key, "stats_file")) stats_file = strdup(options[i].value);
	}
	if(!access_file){
		mosquitto_log_printf(MOSQ_LOG_ERR, "linli_guard: plugin_opt_access_file is required");
		return MOSQ_ERR_INVAL;
	}
	if(load_rules(users, &anon_pub) != 0) return MOSQ_ERR_INVAL;
	mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl, NULL, NULL);
	mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL);
	mosquitto_callback_register(plugin_id, MOSQ_EVT_RELOAD, on_reload, NULL, NULL);
	mosquitto_callback_register(plugin_id, MOSQ_EVT_TICK, on_tick, NULL, NULL);
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)userdata; (void)options; (void)option_count;
	stats_dirty = 1;
	write_stats(1);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_RELOAD, on_reload, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_TICK, on_tick, NULL);
	free_users(users);
	free_filters(anon_pub);
	anon_pub = NULL;
	return MOSQ_ERR_SUCCESS;
}
